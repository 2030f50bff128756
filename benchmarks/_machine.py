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
