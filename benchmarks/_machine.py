"""What the benchmarks say of the machine they ran on."""

import platform


def cpu_name(default=None):
    """The CPU's model name from /proc/cpuinfo, else ``default`` (None: what
    the platform module says)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if default is None:
        return platform.processor() or platform.machine()
    return default


def status_mib(field, default=None):
    """A memory field of this process's ``/proc/self/status`` (``VmRSS``,
    ``VmHWM``, ``RssAnon``...) in MiB, else ``default`` (not Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return default


def reset_peak():
    """Start this process's peak resident memory (``VmHWM``, ``ru_maxrss``)
    afresh from its current resident memory; False where Linux's
    ``clear_refs`` is missing."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True
