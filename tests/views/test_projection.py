import numpy as np
import pytest
import torch

from core.views.projection import Projection, pca_project, umap_project


def _plane_points(k=6, p=50, seed=0):
    """k points and a 9-point path on a random 2-D affine plane in R^p."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(p, 2)))  # (p, 2) orthonormal
    origin = rng.normal(size=p)
    uv = rng.normal(size=(k, 2)) * [3.0, 1.0]
    t = np.linspace(0, 1, 9)[:, None]
    path_uv = uv[0] + t * (uv[1] - uv[0]) + np.sin(np.pi * t) * [0.0, 2.0]
    to_p = lambda a: origin + a @ basis.T  # noqa: E731
    return torch.from_numpy(to_p(uv)), [torch.from_numpy(to_p(path_uv))]


def _dists(a):
    return np.linalg.norm(a[:, None] - a[None], axis=-1)


def test_pca_is_an_isometry_on_a_plane():
    thetas, paths = _plane_points()
    proj = pca_project(thetas, paths)
    assert proj.minima.shape == (6, 2) and proj.paths[0].shape == (9, 2)
    assert proj.method == "pca"
    allp = np.concatenate([thetas.numpy(), paths[0].numpy()])
    ally = np.concatenate([proj.minima, proj.paths[0]])
    np.testing.assert_allclose(_dists(ally), _dists(allp), atol=1e-9)
    assert proj.explained.sum() == pytest.approx(1.0)
    assert proj.explained[0] >= proj.explained[1] > 0


def test_explained_ratios_sum_at_most_one():
    rng = np.random.default_rng(1)
    proj = pca_project(rng.normal(size=(10, 30)), [rng.normal(size=(5, 30))], n_components=3)
    assert proj.explained.shape == (3,)
    assert 0 < proj.explained.sum() <= 1 + 1e-12
    assert np.all(np.diff(proj.explained) <= 1e-12)


def test_path_endpoints_land_on_their_minima():
    rng = np.random.default_rng(2)
    thetas = torch.from_numpy(rng.normal(size=(4, 20)))
    path = torch.stack([thetas[1] + t * (thetas[3] - thetas[1]) for t in np.linspace(0, 1, 7)])
    proj = pca_project(thetas, [path], n_components=3)
    np.testing.assert_allclose(proj.paths[0][0], proj.minima[1], atol=1e-12)
    np.testing.assert_allclose(proj.paths[0][-1], proj.minima[3], atol=1e-12)


def test_fewer_points_than_components_pads_with_zeros():
    # two minima span one direction: the second coordinate is zero with ratio 0
    thetas = torch.tensor([[0.0, 0.0, 0.0], [3.0, 4.0, 0.0]])
    proj = pca_project(thetas, n_components=2)
    np.testing.assert_allclose(proj.minima, [[2.5, 0.0], [-2.5, 0.0]], atol=1e-12)
    np.testing.assert_allclose(proj.explained, [1.0, 0.0])
    # P = 1 < d = 2
    proj = pca_project(np.array([[1.0], [2.0], [4.0]]), n_components=2)
    assert proj.minima.shape == (3, 2) and np.all(proj.minima[:, 1] == 0)
    # a single minimum: all zeros, nothing explained
    proj = pca_project(np.ones((1, 5)))
    assert np.all(proj.minima == 0) and np.all(proj.explained == 0)


def test_axis_titles():
    proj = Projection(np.zeros((2, 2)), [], np.array([0.631, 0.2]), "pca")
    assert proj.axis_titles() == ["PC1 (63.1% var)", "PC2 (20.0% var)"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thetas": np.zeros(3)}, r"thetas must have shape \(K, P\)"),
        ({"thetas": np.zeros((2, 3)), "paths": [np.zeros((4, 2))]}, r"paths\[0\]"),
        ({"thetas": np.zeros((2, 3)), "n_components": 0}, "n_components"),
        ({"thetas": np.full((2, 3), np.nan)}, "finite"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pca_project(**kwargs)


def test_umap_too_few_points():
    with pytest.raises(ValueError, match="at least"):
        umap_project(np.zeros((2, 5)))


@pytest.mark.slow
def test_umap_shapes_and_determinism():
    rng = np.random.default_rng(3)
    thetas = rng.normal(size=(6, 12))
    paths = [np.linspace(thetas[0], thetas[1], 10), np.linspace(thetas[2], thetas[5], 8)]
    a = umap_project(thetas, paths, seed=1)
    b = umap_project(thetas, paths, seed=1)
    assert a.minima.shape == (6, 2) and [p.shape for p in a.paths] == [(10, 2), (8, 2)]
    assert a.method == "umap" and np.isnan(a.explained).all()
    np.testing.assert_array_equal(a.minima, b.minima)
    np.testing.assert_array_equal(a.paths[1], b.paths[1])
    # endpoints of a path are the same points as its minima, so they embed together
    scale = np.ptp(np.concatenate([a.minima, *a.paths]), axis=0).max()
    assert np.linalg.norm(a.paths[0][0] - a.minima[0]) < 0.2 * scale
