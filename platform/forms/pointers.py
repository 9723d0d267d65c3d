"""JSON pointers (RFC 6901), and schema problems named by the pointer of what is wrong."""
from jsonschema.exceptions import best_match


def pointer(parts):
    """Build a JSON pointer from path parts."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def problems(validator, doc):
    """(pointer, message) for each way doc breaks the validator's schema. Where one of several
    shapes was expected (oneOf/anyOf: "a task action" among all actions), the problem reported is
    the one in the closest shape ("'working_dayz' was unexpected"), not "valid under none"."""
    for err in validator.iter_errors(doc):
        while err.context:
            err = _closest(err)
        yield pointer(err.absolute_path), err.message


def _closest(err):
    """Among a oneOf's failed shapes, the problems of those whose constants (a "type": "task"
    discriminator) fit, then the most relevant of them."""
    shapes = {}
    for sub in err.context:
        shapes.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [sub for subs in shapes.values() if not any(s.validator == "const" for s in subs) for sub in subs]
    return best_match(fitting or err.context)
