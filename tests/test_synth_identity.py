"""Synthetic identities (`--difficulty`): 0 draws the looks it always did; > 0 gives each subject its own face shape,
tone and features, with the eyes kept where the eye truth says, weaker movements and more noise."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mer_data import MerDataError
from mer_data.synth import SynthConfig, render
from mer_data.synth.layouts import look_of, rng_for


def test_difficulty_zero_is_the_old_look():
    old = render.subject_look(np.random.default_rng(7))
    assert look_of(0, "casme2", "sub01", 0.0) == render.subject_look(rng_for(0, "casme2", "sub01", "look"))
    assert (old.aspect, old.tone, old.contrast, old.features, old.motion_gain, old.noise_gain) == \
        (1.0, (1.0, 1.0, 1.0), 1.0, 0.0, 1.0, 1.0)
    np.testing.assert_array_equal(render._identity_photo(old), render._photo_and_mask()[0])


def test_subjects_get_identities_of_their_own():
    looks = [look_of(0, "casme2", f"sub{i:02d}", 1.0) for i in range(1, 6)]
    assert len({(lk.aspect, lk.tone, lk.feature_seed) for lk in looks}) == 5
    assert all(0.88 <= lk.aspect <= 1.12 and 0.5 <= lk.motion_gain <= 1.2 and 1 <= lk.noise_gain <= 3 for lk in looks)
    placed = [replace(lk, aspect=1.0, tone=(1.0, 1.0, 1.0), contrast=1.0, features=0.0) for lk in looks[:2]]
    own = [render._identity_photo(lk) for lk in looks[:2]]
    same = [render._identity_photo(lk) for lk in placed]
    assert np.abs(own[0] - own[1]).mean() > 3 * np.abs(same[0] - same[1]).mean() + 1.0  # faces differ, not only light


def test_features_move_but_the_eyes_stay():
    look = replace(look_of(0, "casme2", "sub03", 1.0), tone=(1.0, 1.0, 1.0), contrast=1.0)
    photo, moved = render._photo_and_mask()[0], render._identity_photo(look)
    for x, y in (render.RIGHT_PUPIL, render.LEFT_PUPIL):
        ys, xs = slice(round(y) - 2, round(y) + 3), slice(round(x) - 2, round(x) + 3)
        assert np.abs(moved[ys, xs] - photo[ys, xs]).mean() < 2.0  # grey levels: the pupils did not move
    mx, my = render.MOUTH
    mouth = (slice(round(my) - 8, round(my) + 9), slice(round(mx) - 12, round(mx) + 13))
    assert np.abs(moved[mouth] - photo[mouth]).mean() > 4.0


def test_eye_truth_follows_the_aspect():
    look = look_of(0, "casme2", "sub02", 1.0)
    eyes = render.photo_to_frame(look, np.array([render.RIGHT_PUPIL, render.LEFT_PUPIL]))
    flat = render.photo_to_frame(replace(look, aspect=1.0), np.array([render.RIGHT_PUPIL, render.LEFT_PUPIL]))
    ratio = (eyes[1, 0] - eyes[0, 0]) / (flat[1, 0] - flat[0, 0])
    assert ratio == pytest.approx(look.aspect) and eyes[0, 1] == pytest.approx(flat[0, 1])


def test_difficulty_out_of_range_is_one_line():
    with pytest.raises(MerDataError, match="--difficulty 1.5"):
        SynthConfig(dataset="casme2", difficulty=1.5)
