"""Process memory figures shared by the benchmark scripts (Linux /proc)."""


def rss_and_peak() -> tuple[int, int]:
    """(current RSS, RSS high-water mark) of this process in bytes, from /proc."""
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields["VmRSS"], fields["VmHWM"]
