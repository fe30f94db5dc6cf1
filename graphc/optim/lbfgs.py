"""L-BFGS, as ``torch.optim.LBFGS`` (a port of its algorithm, including the strong-Wolfe line search).

The parameters are updated in place while the closure is re-evaluated, so a step is made atomic by
restoring the parameters' values (and leaving the optimizer state untouched) when anything raises.
"""
from __future__ import annotations

import numpy as np

from graphc.ir.array_module import array_module

from ..autograd.grad_mode import enable_grad, no_grad
from ..tensors import Tensor
from ..dispatch import current as _dispatch
from ._transaction import _check_param, _write_in_place
from .optimizer import Optimizer, _check_hyperparameters, _to_scalar

__all__ = ["LBFGS"]


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    # Minimizer of the cubic interpolating (x1, f1, g1) and (x2, f2, g2), clamped to the bounds.
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func, x, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    d_norm = np.abs(d).max()
    g = g.copy()
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = g_new.dot(d)

    # bracket an interval containing a point satisfying the Wolfe criteria
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    while ls_iter < max_ls:
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket = [t]
            bracket_f = [f_new]
            bracket_g = [g_new]
            done = True
            break
        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break
        # interpolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))
        # next step
        t_prev = tmp
        f_prev = f_new
        g_prev = g_new.copy()
        gtd_prev = gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

    # reached max number of iterations?
    if ls_iter == max_ls:
        bracket = [0, t]
        bracket_f = [f, f_new]
        bracket_g = [g, g_new]

    # zoom phase: refine the bracket until a point satisfies the criteria
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = g_new.dot(d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.copy()
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.copy()
            bracket_gtd[low_pos] = gtd_new

    t = bracket[low_pos]
    f_new = bracket_f[low_pos]
    g_new = bracket_g[low_pos]
    return f_new, g_new, t, ls_func_evals


def _to_np(x):
    """State value -> what the algorithm computes with (numpy arrays / numpy scalars)."""
    if isinstance(x, Tensor):
        return x._data[()] if x._data.ndim == 0 else x._data
    if isinstance(x, list):
        return [_to_np(v) for v in x]
    return x


def _is_array(x) -> bool:
    """A numpy array or a device array (CuPy, for parameters on a GPU)."""
    return isinstance(x, np.ndarray) or array_module(x) is not np


def _to_tensor(x):
    """Algorithm value -> state value: arrays and numpy scalars become tensors (as in PyTorch)."""
    if _is_array(x) or isinstance(x, np.generic) and not isinstance(x, np.bool_):
        return Tensor._make(array_module(x).array(x))
    if isinstance(x, list):
        return [_to_tensor(v) for v in x]
    return x


class LBFGS(Optimizer):
    """Implements the L-BFGS algorithm (heavily inspired by minFunc).

    Supports a single parameter group only. ``step`` requires a closure that re-evaluates the
    model and returns the loss.

    Args:
        params (iterable): parameters to optimize.
        lr (float): learning rate (default: 1).
        max_iter (int): maximal number of iterations per optimization step (default: 20).
        max_eval (int): maximal number of function evaluations per step (default: max_iter * 5 // 4).
        tolerance_grad (float): termination tolerance on first order optimality (default: 1e-7).
        tolerance_change (float): termination tolerance on function value/parameter changes (default: 1e-9).
        history_size (int): update history size (default: 100).
        line_search_fn (str): either 'strong_wolfe' or None (default: None).
    """

    def __init__(self, params, lr=1, max_iter: int = 20, max_eval: int | None = None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100, line_search_fn: str | None = None) -> None:
        _check_hyperparameters(lr=lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {"lr": lr, "max_iter": max_iter, "max_eval": max_eval, "tolerance_grad": tolerance_grad,
                    "tolerance_change": tolerance_change, "history_size": history_size,
                    "line_search_fn": line_search_fn}
        super().__init__(params, defaults)

        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

        self._params = self.param_groups[0]["params"]
        self._numel_cache = None

    def _numel(self) -> int:
        if self._numel_cache is None:
            self._numel_cache = sum(p.numel() for p in self._params)
        return self._numel_cache

    def _gather_flat_grad(self) -> np.ndarray:
        views = []
        for p in self._params:
            g = p.grad
            if g is None:
                views.append(array_module(p._data).zeros(p._data.size, dtype=p._data.dtype))
            else:
                if getattr(g, "is_sparse", False) is True:
                    raise RuntimeError("graphc.optim does not support sparse gradients")
                if g._data.size != p._data.size:
                    raise RuntimeError(f"shape '{list(p.shape)}' is invalid for input of size {g._data.size}")
                views.append(g._data.reshape(-1))
        return np.concatenate(views, 0)

    def _add_grad(self, step_size, update: np.ndarray) -> None:
        offset = 0
        for p in self._params:
            numel = p._data.size
            _write_in_place(p, p._data + step_size * update[offset:offset + numel].reshape(p._data.shape))
            offset += numel
        if offset != self._numel():
            raise AssertionError(f"Expected offset {offset} to equal {self._numel()}")

    def _clone_param(self) -> list[np.ndarray]:
        return [p._data.copy() for p in self._params]

    def _set_param(self, params_data) -> None:
        for p, pdata in zip(self._params, params_data):
            _write_in_place(p, pdata)

    def _directional_evaluate(self, closure, x, t, d):
        self._add_grad(t, d)
        loss = float(closure())
        flat_grad = self._gather_flat_grad()
        self._set_param(x)
        return loss, flat_grad

    def step(self, closure):
        """Perform a single optimization step.

        Args:
            closure (Callable): A closure that reevaluates the model and returns the loss.
        """
        _dispatch().eager_only("LBFGS.step evaluates the closure several times and takes decisions on loss and "
                               "gradient values in Python (line search, convergence tests): it runs eagerly")
        if len(self.param_groups) != 1:
            raise AssertionError(f"Expected exactly one param_group, but got {len(self.param_groups)}")
        for p in self._params:
            _check_param(p)
        saved = self._clone_param()
        try:
            with no_grad():
                return self._step(closure)
        except BaseException:
            # a failed step leaves the parameters as they were (the state is only written at the end)
            for p, data in zip(self._params, saved):
                if not np.array_equal(p._data, data, equal_nan=True):
                    _write_in_place(p, data)
            raise

    def _step(self, closure):
        user_closure = closure

        def closure():
            with enable_grad():
                return user_closure()

        group = self.param_groups[0]
        lr = _to_scalar(group["lr"])
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]

        # NOTE: LBFGS has only global state, but we register it as state for the first param,
        # because that is what state_dict() saves.
        stored = self.state[self._params[0]] if self._params[0] in self.state else {}
        func_evals = stored.get("func_evals", 0)
        state_n_iter = stored.get("n_iter", 0)

        # evaluate initial f(x) and df/dx
        orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        func_evals += 1

        flat_grad = self._gather_flat_grad()
        opt_cond = np.abs(flat_grad).max() <= tolerance_grad

        if opt_cond:  # optimal condition
            st = self.state[self._params[0]]
            st["func_evals"] = func_evals
            st["n_iter"] = state_n_iter
            return orig_loss

        # tensors cached in state (for tracing)
        d = _to_np(stored.get("d"))
        t = _to_np(stored.get("t"))
        old_dirs = _to_np(stored.get("old_dirs"))
        old_stps = _to_np(stored.get("old_stps"))
        ro = _to_np(stored.get("ro"))
        H_diag = _to_np(stored.get("H_diag"))
        prev_flat_grad = _to_np(stored.get("prev_flat_grad"))
        prev_loss = stored.get("prev_loss")
        al = _to_np(stored["al"]) if "al" in stored else None

        n_iter = 0
        # optimize for a max of max_iter iterations
        while n_iter < max_iter:
            n_iter += 1
            state_n_iter += 1

            # compute gradient descent direction
            if state_n_iter == 1:
                d = -flat_grad
                old_dirs, old_stps, ro = [], [], []
                H_diag = 1
            else:
                # do lbfgs update (update memory)
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y.dot(s)  # y*s
                if ys > 1e-10:
                    # updating memory
                    if len(old_dirs) == history_size:
                        # shift history by one (limited-memory)
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)
                    # store new direction/step
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(1.0 / ys)
                    # update scale of initial Hessian approximation
                    H_diag = ys / y.dot(y)  # (y*y)

                # compute the approximate (L-BFGS) inverse Hessian multiplied by the gradient
                num_old = len(old_dirs)
                if al is None:
                    al = [None] * history_size

                # iteration in L-BFGS loop collapsed to use just one buffer
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = old_stps[i].dot(q) * ro[i]
                    q = q + (-al[i]) * old_dirs[i]

                # multiply by initial Hessian; r/d is the final direction
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = old_dirs[i].dot(r) * ro[i]
                    r += (al[i] - be_i) * old_stps[i]

            prev_flat_grad = flat_grad.copy()
            prev_loss = loss

            # compute step length: reset initial guess for step size
            if state_n_iter == 1:
                t = min(1.0, 1.0 / np.abs(flat_grad).sum()) * lr
            else:
                t = lr

            # directional derivative
            gtd = flat_grad.dot(d)  # g * d

            # directional derivative is below tolerance
            if gtd > -tolerance_change:
                break

            # optional line search: user function
            ls_func_evals = 0
            if line_search_fn is not None:
                # perform line search, using user function
                if line_search_fn != "strong_wolfe":
                    raise RuntimeError("only 'strong_wolfe' is supported")
                x_init = self._clone_param()

                def obj_func(x, t, d):
                    return self._directional_evaluate(closure, x, t, d)

                loss, flat_grad, t, ls_func_evals = _strong_wolfe(obj_func, x_init, t, d, loss, flat_grad, gtd,
                                                                  max_ls=max_eval - current_evals)
                self._add_grad(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                # no line search, simply move with fixed-step
                self._add_grad(t, d)
                if n_iter != max_iter:
                    # re-evaluate function only if not in last iteration
                    loss = float(closure())
                    flat_grad = self._gather_flat_grad()
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1

            # update func eval
            current_evals += ls_func_evals
            func_evals += ls_func_evals

            # check conditions
            if n_iter == max_iter:
                break
            if current_evals >= max_eval:
                break
            # optimal condition
            if opt_cond:
                break
            # lack of progress
            if np.abs(d * t).max() <= tolerance_change:
                break
            if abs(loss - prev_loss) < tolerance_change:
                break

        st = self.state[self._params[0]]
        st["func_evals"] = func_evals
        st["n_iter"] = state_n_iter
        st["d"] = _to_tensor(d)
        st["t"] = _to_tensor(t)
        st["old_dirs"] = _to_tensor(old_dirs)
        st["old_stps"] = _to_tensor(old_stps)
        st["ro"] = _to_tensor(ro)
        st["H_diag"] = _to_tensor(H_diag)
        old_prev = stored.get("prev_flat_grad")
        if isinstance(old_prev, Tensor) and _is_array(prev_flat_grad) \
                and old_prev._data.shape == prev_flat_grad.shape:
            _write_in_place(old_prev, prev_flat_grad)  # in place, as PyTorch's copy_
            st["prev_flat_grad"] = old_prev
        else:
            st["prev_flat_grad"] = _to_tensor(prev_flat_grad)
        st["prev_loss"] = prev_loss
        if al is not None:
            st["al"] = _to_tensor(al)
        return orig_loss
