"""JSON pointers (RFC 6901)."""


def pointer(parts):
    """Build a JSON pointer from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)
