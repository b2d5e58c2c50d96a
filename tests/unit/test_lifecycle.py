"""The image lifecycle table (SPEC section 5): every change from every state, the legal ones and
the 409 for the others."""

import pytest

from core.errors import Conflict
from models import ImageState as S
from services import lifecycle

EXPECTED = {
    # (change, state before): state after, or None for a 409
    **{(lifecycle.SAVE, s): a for s, a in [(S.unlabeled, S.in_progress), (S.prelabeled, S.in_progress), (S.in_progress, S.in_progress),
                                            (S.to_review, S.to_review), (S.rejected, S.rejected), (S.accepted, S.accepted)]},
    **{(lifecycle.PREDICTIONS, s): a for s, a in [(S.unlabeled, S.prelabeled), (S.prelabeled, S.prelabeled), (S.in_progress, None),
                                                   (S.to_review, None), (S.rejected, None), (S.accepted, None)]},
    **{(lifecycle.SUBMIT, s): a for s, a in [(S.unlabeled, S.to_review), (S.prelabeled, S.to_review), (S.in_progress, S.to_review),
                                              (S.rejected, S.to_review), (S.to_review, None), (S.accepted, None)]},
    **{(lifecycle.ACCEPT, s): S.accepted if s == S.to_review else None for s in S},
    **{(lifecycle.REJECT, s): S.rejected if s == S.to_review else None for s in S},
    **{(lifecycle.SEND_BACK, s): S.to_review if s == S.accepted else None for s in S},
}


def test_the_table_names_every_change_and_state():
    assert set(EXPECTED) == {(change, state) for change in lifecycle.TRANSITIONS for state in S}


@pytest.mark.parametrize("change, state", sorted(EXPECTED, key=str), ids=lambda v: getattr(v, "value", v))
def test_each_change_from_each_state(change, state):
    expected = EXPECTED[(change, state)]
    if expected is None:
        with pytest.raises(Conflict) as refused:
            lifecycle.after(change, state)
        assert refused.value.status == 409 and refused.value.code == "wrong_state"
        assert state.value.replace("_", " ") in refused.value.message
    else:
        assert lifecycle.after(change, state) == expected


@pytest.mark.parametrize("state", [S.unlabeled, S.prelabeled, S.in_progress, S.rejected])
def test_a_submit_without_review_goes_straight_to_accepted(state):
    assert lifecycle.after(lifecycle.SUBMIT, state, review_required=False) == S.accepted
