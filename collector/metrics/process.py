"""cAdvisor's ``process`` family group: processes, threads (the pids controller),
descriptors, sockets and the init process's soft open-files limit."""

from __future__ import annotations

from collector.metrics.base import GAUGE, Family, attr, extra, fams


def families() -> dict[str, list[Family]]:
    return {
        "process": fams(
            ("container_processes", GAUGE, "Number of processes running inside the container.",
             (), extra("processes", attr("processes"))),
            ("container_file_descriptors", GAUGE,
             "Number of open file descriptors for the container.", (),
             extra("processes", attr("fds"))),
            ("container_sockets", GAUGE, "Number of open sockets for the container.", (),
             extra("processes", attr("sockets"))),
            ("container_threads_max", GAUGE,
             "Maximum number of threads allowed inside the container, infinity if value is "
             "zero", (), attr("pids.max")),
            ("container_threads", GAUGE, "Number of threads running inside the container", (),
             attr("pids.current")),
            ("container_ulimits_soft", GAUGE,
             "Soft ulimit values for the container root process. Unlimited if -1, except "
             "priority and nice", ("ulimit",),
             extra("processes", lambda p: [(("max_open_files",), float(p.max_open_files))],
                   [])),
        ),
    }
