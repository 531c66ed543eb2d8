"""boxwatch's Grafana provisioning: the generator of dashboards and alert rules (build.py)."""
