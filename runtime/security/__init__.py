"""How a container is confined beyond namespaces and capabilities: device rules,
seccomp, keyring, and the checks the commands that cross the boundary make."""
