"""The root of provmark's own exceptions.

``except provmark.ProvmarkError`` catches every refusal provmark raises on purpose
(an image it cannot read or mark, credentials that cannot sign, a batch it cannot
plan); each subclass also derives from the built-in exception its callers already
expect (``ValueError``, ``ImportError``, ``RuntimeError``), so existing handlers keep
working.
"""


class ProvmarkError(Exception):
    """A refusal by provmark; the message says what is wrong and what to do."""
