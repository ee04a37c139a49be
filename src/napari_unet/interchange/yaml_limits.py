"""Parse untrusted YAML (a bioimage.io package's ``rdf.yaml``) within fixed limits.

A YAML file a few hundred bytes long can describe a structure of billions of nodes: an
anchor ``&a`` names a node, an alias ``*a`` reuses it, and nine levels of ten aliases each
(the "billion laughs") expand to 10^9 nodes when a consumer walks the data as a tree, as
``bioimageio.spec`` (pydantic) does. PyYAML's composer itself shares the aliased node, so
composing the graph is cheap and linear in the text; :func:`safe_load_limited` composes
it with a :class:`LimitedSafeLoader`, which keeps, for every finished node, its size and
depth *with aliases expanded* (memoised over the graph: ``size(node) = 1 + sum(size(child))``),
and refuses the document as soon as

- the expanded node count exceeds :data:`MAX_NODES`,
- it uses more than :data:`MAX_ALIASES` aliases,
- its nesting (aliases expanded) is deeper than :data:`MAX_DEPTH`, or
- an alias refers to a node that contains it (a recursive structure),

before anything is constructed. A document whose top level is not a mapping, or a file of
several documents, is refused too. Refusals raise :class:`YamlLimitError` saying why.

PyYAML is used when installed (its events from libyaml where it has it); otherwise
``ruyaml`` (what ``bioimageio.spec`` itself reads YAML with), whose composer has the same
structure.
"""

from __future__ import annotations

from typing import Any

#: Nodes of the document with every alias expanded (an exported rdf.yaml has ~350).
MAX_NODES = 100_000
#: Aliases (``*name``) in the document (an exported rdf.yaml has none).
MAX_ALIASES = 1_000
#: Nesting of collections, aliases expanded (an exported rdf.yaml nests ~8 deep).
MAX_DEPTH = 100


class YamlLimitError(ValueError):
    """A YAML document refused: too large once its aliases are expanded, too deep,
    recursive, not a mapping, or not parseable."""


class _Limits:
    """The limit checks of a composer (mixed into a PyYAML or ruyaml ``SafeLoader``).

    ``compose_node`` is PyYAML's / ruyaml's, wrapped: each finished node's expanded
    (size, depth) is memoised by node identity, so an alias costs one lookup.
    """

    _what = "the YAML file"
    max_nodes = MAX_NODES
    max_aliases = MAX_ALIASES
    max_depth = MAX_DEPTH

    def _init_limits(self, what: str) -> None:
        self._what = what
        self._aliases = 0
        self._count = 0  # nodes of the document so far, aliases expanded
        self._open = 0  # collections being composed (the recursion depth of the composer)
        self._done: dict[int, tuple[int, int]] = {}  # id(node) -> (size, depth)
        self._keep: list[Any] = []  # the nodes whose id() is memoised stay alive

    def _refuse(self, why: str) -> YamlLimitError:
        return YamlLimitError(f"{self._what}: refused: {why}")

    def _next_is_alias(self) -> bool:  # pragma: no cover - provided per library
        raise NotImplementedError

    def _next_is_collection(self) -> bool:  # pragma: no cover - provided per library
        raise NotImplementedError

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._next_is_alias():
            self._aliases += 1
            if self._aliases > self.max_aliases:
                raise self._refuse(f"it has more than {self.max_aliases:,} aliases (a YAML bomb?)")
            node = super().compose_node(parent, index)  # type: ignore[misc]
            if id(node) not in self._done:
                raise self._refuse("an alias refers to a node that contains it (recursive)")
            self._count += self._done[id(node)][0]
            self._check_count(self._count)
            return node
        collection = self._next_is_collection()
        if collection:
            self._open += 1
            if self._open > self.max_depth:
                raise self._refuse(f"it nests deeper than {self.max_depth} levels")
        try:
            node = super().compose_node(parent, index)  # type: ignore[misc]
        finally:
            if collection:
                self._open -= 1
        self._measure(node)
        return node

    def _check_count(self, count: int) -> None:
        if count > self.max_nodes:
            raise self._refuse(
                f"its aliases expand to more than {self.max_nodes:,} nodes (a YAML bomb?)"
                if self._aliases
                else f"it has more than {self.max_nodes:,} nodes"
            )

    def _measure(self, node: Any) -> None:
        value = node.value
        if isinstance(value, list):
            pairs = (item if isinstance(item, tuple) else (item,) for item in value)
            children = [c for pair in pairs for c in pair]
            done = self._done
            size = 1 + sum(done[id(c)][0] for c in children)
            depth = 1 + max((done[id(c)][1] for c in children), default=0)
        else:
            size, depth = 1, 1
        self._count += 1
        self._check_count(max(size, self._count))
        if depth > self.max_depth:
            raise self._refuse(
                f"it nests deeper than {self.max_depth} levels once its aliases are expanded"
            )
        self._done[id(node)] = (size, depth)
        self._keep.append(node)


try:
    import yaml as _yaml
except ImportError:  # pragma: no cover - PyYAML is optional; ruyaml comes with the spec
    _yaml = None

if _yaml is not None:
    from yaml.composer import Composer as _Composer
    from yaml.constructor import SafeConstructor as _SafeConstructor
    from yaml.resolver import Resolver as _Resolver

    try:  # libyaml's parser (C, a state machine: fast, no recursion)
        from yaml._yaml import CParser as _Parser
    except ImportError:  # pragma: no cover - PyYAML built without libyaml
        from yaml.parser import Parser as _PyParser
        from yaml.reader import Reader as _Reader
        from yaml.scanner import Scanner as _Scanner

        class _Parser(_Reader, _Scanner, _PyParser):  # type: ignore[no-redef]
            def __init__(self, stream: Any) -> None:
                _Reader.__init__(self, stream)
                _Scanner.__init__(self)
                _PyParser.__init__(self)

    class LimitedSafeLoader(_Limits, _Composer, _SafeConstructor, _Resolver, _Parser):
        """PyYAML's ``SafeLoader`` (its Python composer, safe constructor and resolver)
        that refuses documents beyond the module's limits.

        The events come from libyaml's parser where PyYAML has it (what ``CSafeLoader``
        uses: ``SafeLoader``'s pure-Python scanner takes seconds per megabyte), the
        composition is PyYAML's Python composer with the limits checked at every node
        (``CSafeLoader``'s composer is C and cannot be checked as it goes).
        """

        def __init__(self, stream: Any, what: str = "the YAML file") -> None:
            _Parser.__init__(self, stream)
            _Composer.__init__(self)
            _SafeConstructor.__init__(self)
            _Resolver.__init__(self)
            self._init_limits(what)

        def _next_is_alias(self) -> bool:
            return self.check_event(_yaml.AliasEvent)

        def _next_is_collection(self) -> bool:
            return self.check_event(_yaml.SequenceStartEvent, _yaml.MappingStartEvent)

    _ERRORS: tuple[type[BaseException], ...] = (_yaml.YAMLError,)
else:  # pragma: no cover - exercised only without PyYAML
    from ruyaml.error import YAMLError as _RuyamlError
    from ruyaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
    from ruyaml.loader import SafeLoader as _RuyamlSafeLoader

    class LimitedSafeLoader(_Limits, _RuyamlSafeLoader):  # type: ignore[no-redef]
        """ruyaml's ``SafeLoader`` that refuses documents beyond the module's limits."""

        def __init__(self, stream: Any, what: str = "the YAML file") -> None:
            super().__init__(stream)
            self._init_limits(what)

        def _next_is_alias(self) -> bool:
            return self.parser.check_event(AliasEvent)

        def _next_is_collection(self) -> bool:
            return self.parser.check_event(SequenceStartEvent, MappingStartEvent)

    _ERRORS = (_RuyamlError,)


def safe_load_limited(text: bytes | str, *, what: str = "the YAML file") -> dict[str, Any]:
    """The mapping of the single YAML document ``text``, parsed with a safe loader (plain
    data only: no Python objects) within :data:`MAX_NODES` expanded nodes,
    :data:`MAX_ALIASES` aliases and :data:`MAX_DEPTH` levels.

    ``what`` names the file in messages. Raises :class:`YamlLimitError`
    (``"<what>: refused: ..."``, or ``"cannot read <what>: not valid YAML: ..."``) for a document
    beyond the limits, recursive, not a mapping at its top level, several documents, or
    not valid YAML. The text itself is not size-limited here: the caller reads it with a
    limit (a megabyte of YAML composes in well under a second).
    """
    loader = LimitedSafeLoader(text, what)
    try:
        if not loader.check_node():
            raise loader._refuse("it is empty (no YAML document)")
        node = loader.get_node()
        if loader.check_node():
            raise loader._refuse("it holds more than one YAML document")
        if node.id != "mapping":
            raise loader._refuse(f"its top level is a {node.id}, not a mapping")
        data = loader.construct_document(node)
    except YamlLimitError:
        raise
    except RecursionError as err:  # deeper than Python's stack (should be caught above)
        raise loader._refuse(f"it nests too deeply: {err}") from None
    except _ERRORS as err:
        text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
        raise YamlLimitError(
            f"cannot read {what}: not valid YAML: {text[:300] or type(err).__name__}"
        ) from err
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise YamlLimitError(f"{what}: refused: its top level is not a mapping")
    return data
