"""The bad-input corpus is complete and the operator's own validation agrees with it."""

from __future__ import annotations

import pytest

from sloscale.api.spec import SpecError, parse_object
from tests.bad_inputs.corpus import OUTCOMES, Entry, entries

ENTRIES = entries()
# Reasons the operator reports on Ready (docs/reference lists them) and Ready itself.
REASONS = {"Ready", "ApplyFailed", "SecretNotFound", "RenderFailed", "InvalidSpec"}


def test_corpus_is_large_and_every_entry_has_an_expectation() -> None:
    assert len(ENTRIES) >= 60
    for entry in ENTRIES:
        assert entry.outcome in OUTCOMES, entry.name
        assert entry.manifest.get("kind") == "InferenceService", entry.name
        if entry.outcome == "accepted":
            assert entry.detail in REASONS, entry.name
        else:
            assert entry.detail.startswith(("spec", "metadata")), entry.name


def test_corpus_covers_each_kind_of_outcome() -> None:
    counts = {outcome: sum(e.outcome == outcome for e in ENTRIES) for outcome in OUTCOMES}
    assert counts["rejected"] >= 60 and counts["accepted"] >= 5 and counts["pruned"] >= 3


def test_names_are_unique() -> None:
    names = [e.manifest["metadata"]["name"] for e in ENTRIES if e.outcome != "rejected"]
    assert len(names) == len(set(names))


# The API server alone guards object metadata other than the name.
MIRRORED = [e for e in ENTRIES if e.outcome == "rejected"
            and (not e.detail.startswith("metadata.") or e.detail == "metadata.name")]


@pytest.mark.parametrize("entry", MIRRORED, ids=[e.name for e in MIRRORED])
def test_operator_validation_rejects_what_admission_rejects(entry: Entry) -> None:
    """An object that skipped admission still becomes InvalidSpec naming the same field."""
    with pytest.raises(SpecError) as caught:
        parse_object(entry.manifest)
    assert any(problem.startswith(entry.detail) for problem in caught.value.problems), (
        caught.value.problems)


ADMITTED = [e for e in ENTRIES if e.outcome != "rejected"]


@pytest.mark.parametrize("entry", ADMITTED, ids=[e.name for e in ADMITTED])
def test_operator_validation_accepts_what_admission_admits(entry: Entry) -> None:
    parse_object(entry.manifest)
