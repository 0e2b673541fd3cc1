"""Materialised area paths (``/1/4/17/``): the one place that takes them apart.

An area's path lists the ids from the city down to the area itself, each followed by ``/``, so
"inside" is a prefix test on whole segments (``/1/2/`` covers ``/1/2/3/``, never ``/1/23/``; that
test is ``core.auth.Caller.in_scope`` and ``grids.queries.in_subtree``). Everything that needs the
ids of a path, its city or an ancestor's path calls these; nothing splits a path by hand.
"""

from __future__ import annotations


def path_ids(path: str) -> list[int]:
    """Every id on the path, from the city down to the area: ``/1/4/17/`` → ``[1, 4, 17]``."""
    return [int(part) for part in path.split("/") if part]


def ancestor_ids(path: str) -> list[int]:
    """Ids above the area, from the city down: ``/1/4/17/`` → ``[1, 4]``."""
    return path_ids(path)[:-1]


def own_id(path: str) -> int:
    """The area's own id, the last on its path: ``/1/4/17/`` → 17."""
    return path_ids(path)[-1]


def city_id(path: str) -> int:
    """The city above (or at) an area, the root of its path: ``/1/4/17/`` → 1."""
    return path_ids(path)[0]


def path_of(ids: list[int]) -> str:
    """The path made of these ids: ``[1, 4]`` → ``/1/4/``."""
    return "/" + "".join(f"{area_id}/" for area_id in ids)


def city_path(path: str) -> str:
    """``/1/4/17/`` → ``/1/``: the path of the city the area lies in."""
    return path_of(path_ids(path)[:1])


def ancestor_paths(path: str) -> list[str]:
    """The path of every area from the city down to this one: ``/1/4/`` → ``["/1/", "/1/4/"]``."""
    ids = path_ids(path)
    return [path_of(ids[: depth + 1]) for depth in range(len(ids))]


def id_at_depth(path: str, depth: int) -> int | None:
    """The id at ``depth`` (0: the city) on the path, or None when the path is shallower."""
    ids = path_ids(path)
    return ids[depth] if depth < len(ids) else None


def common_ancestor(paths: list[str]) -> str | None:
    """The path of the lowest area holding (or being) every one of ``paths``, compared by whole
    segments (``/1/2/`` and ``/1/23/`` share ``/1/``); None when they lie in different cities."""
    shared: list[int] | None = None
    for path in paths:
        ids = path_ids(path)
        if shared is None:
            shared = ids
            continue
        depth = 0
        while depth < min(len(shared), len(ids)) and shared[depth] == ids[depth]:
            depth += 1
        shared = shared[:depth]
    return path_of(shared) if shared else None
