"""One retrainer per kind of winner: the kind follows from the winner's data and --refit,
and every kind has its retrainer (the retraining itself runs in test_pipeline and
test_cross_validated)."""

from search.finalize.retrain import RETRAINERS, WinnerKind, winner_kind
from trainables.pool import FoldedData, TrialData


def test_the_kind_of_a_winner_follows_from_its_data_and_refit():
    folded, one_split = FoldedData.__new__(FoldedData), TrialData.__new__(TrialData)
    assert winner_kind(one_split, refit=False) is WinnerKind.SINGLE_SPLIT
    assert winner_kind(one_split, refit=True) is WinnerKind.SINGLE_SPLIT  # runs as it ran
    assert winner_kind(folded, refit=False) is WinnerKind.FOLD_ENSEMBLE
    assert winner_kind(folded, refit=True) is WinnerKind.REFIT


def test_every_kind_has_one_retrainer():
    assert set(RETRAINERS) == set(WinnerKind)
    assert len(set(RETRAINERS.values())) == len(WinnerKind)
