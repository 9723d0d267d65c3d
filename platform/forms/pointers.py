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
        where = None
        while err.context:
            shapes = {}
            for sub in err.context:
                shapes.setdefault(sub.relative_schema_path[0], []).append(sub)
            # the shapes whose constants (a "type": "task" discriminator) fit the document
            fitting = [sub for subs in shapes.values() if not any(s.validator == "const" for s in subs)
                       for sub in subs]
            consts = [sub for sub in err.context if sub.validator == "const"]
            if not fitting and consts:  # a misspelt type: say which ones there are
                allowed = ", ".join(sorted({repr(c.validator_value) for c in consts}))
                err.message = f"{consts[0].instance!r} is not one of {allowed}"
                where = consts[0].absolute_path
                break
            err = best_match(fitting or err.context)
        yield pointer(where if where is not None else err.absolute_path), err.message
