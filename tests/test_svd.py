"""The small SVD every solver and the uncertainty use (``jaxcal.solvers._base.svd``): one-sided Jacobi
rotations for up to ``JACOBI_MAX_PARAMS`` columns, LAPACK beyond, checked against NumPy's LAPACK SVD."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcal.solvers._base import JACOBI_MAX_PARAMS, scaled_svd, svd

EPS32 = float(np.finfo(np.float32).eps)


def _matrix(n: int, k: int, condition: float, seed: int) -> np.ndarray:
    """An ``(n, k)`` float32 matrix with singular values spread from 1 to ``1 / condition``."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(n, k)))
    v, _ = np.linalg.qr(rng.normal(size=(k, k)))
    s = np.geomspace(1.0, 1.0 / condition, k)
    return ((u * s) @ v.T).astype(np.float32)


@pytest.mark.parametrize("k", range(1, JACOBI_MAX_PARAMS + 2))
@pytest.mark.parametrize("condition", [1.0, 1e3])
def test_singular_values_and_factors_match_lapack(k, condition):
    n = 14
    a = _matrix(n, k, condition, seed=k)
    u, s, vt = (np.asarray(x, np.float64) for x in svd(jnp.asarray(a)))
    expected = np.linalg.svd(a.astype(np.float64), compute_uv=False)
    # Each singular value of a float32 matrix is perturbed by about eps * ||a|| * sqrt(n k) by its own
    # rounding (Weyl), and by the rotations' rounding, of the same order per sweep: 16 such roundings.
    bound = 16 * np.sqrt(n * k) * EPS32 * expected[0]
    np.testing.assert_allclose(np.sort(s)[::-1], expected, rtol=0, atol=bound)
    np.testing.assert_allclose((u * s) @ vt, a, rtol=0, atol=bound)
    # the right factor is orthogonal to the rotations' rounding (4 sweeps' worth of k roundings each)
    np.testing.assert_allclose(vt @ vt.T, np.eye(k), rtol=0, atol=16 * k * EPS32)


def test_badly_scaled_columns_keep_their_digits_once_scaled():
    # Pontius-like columns: 1, t_u and t_u**2 with t_u up to 3e6 (norms from 6 to 2e13)
    t_u = np.linspace(1.5e5, 3.0e6, 40)
    jac = np.stack([np.ones_like(t_u), t_u, t_u**2], axis=1)
    d, _, s, _, full_rank = (np.asarray(x, np.float64) for x in scaled_svd(jnp.asarray(jac, jnp.float32)))
    scaled = jac / np.linalg.norm(jac, axis=0)
    expected = np.linalg.svd(scaled, compute_uv=False)
    assert bool(full_rank)
    np.testing.assert_allclose(d, np.linalg.norm(jac, axis=0), rtol=4 * np.sqrt(40) * EPS32)
    # each scaled column is rounded once (float32) before the rotations: as above
    np.testing.assert_allclose(np.sort(s)[::-1], expected, rtol=0, atol=16 * np.sqrt(3 * 40) * EPS32 * expected[0])
    # unscaled, the same matrix's smallest singular value is below float32's resolution of its largest
    assert np.linalg.svd(jac, compute_uv=False)[-1] < EPS32 * np.linalg.svd(jac, compute_uv=False)[0]


@pytest.mark.parametrize("k", [2, 3])
def test_a_zero_or_repeated_column_is_rank_deficient(k):
    a = _matrix(11, k, 1.0, seed=0)
    zero = a.copy()
    zero[:, -1] = 0
    repeated = a.copy()
    repeated[:, -1] = repeated[:, 0]
    assert not bool(scaled_svd(jnp.asarray(zero))[-1])
    assert not bool(scaled_svd(jnp.asarray(repeated))[-1])
    assert bool(scaled_svd(jnp.asarray(a))[-1])


def test_under_vmap_each_matrix_is_its_own():
    stack = np.stack([_matrix(14, 2, c, seed=i) for i, c in enumerate([1.0, 10.0, 100.0])])
    batched = np.asarray(jax.vmap(lambda a: svd(a)[1])(jnp.asarray(stack)))
    for a, s in zip(stack, batched, strict=True):
        expected = np.linalg.svd(a.astype(np.float64), compute_uv=False)
        np.testing.assert_allclose(np.sort(s)[::-1], expected, rtol=0, atol=16 * np.sqrt(28) * EPS32 * expected[0])
