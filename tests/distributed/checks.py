"""Every distributed check, run by each rank of one MPI job (MPI start-up costs ~1 s, so one
launch covers them all): ``mpiexec -n N python tests/distributed/checks.py``. Each rank knows
every rank's inputs (seeded by rank), so numpy computes the expected results without MPI. A
failed check raises, which aborts the whole job: tests/test_distributed.py reads the exit status
and the traceback."""
import os
import warnings

import numpy as np

import graphc as torch
import graphc.distributed as dist
import graphc.nn as nn
import graphc.nn.functional as F
from graphc.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group(backend="mpi")
RANK, WORLD = dist.get_rank(), dist.get_world_size()


def inputs(shape, dtype=np.float32, kind="normal"):
    """Every rank's input (list indexed by rank)."""
    out = []
    for r in range(WORLD):
        g = np.random.default_rng(100 + r)
        a = g.standard_normal(shape) if kind == "normal" else g.integers(1, 4, size=shape)
        out.append(a.astype(dtype))
    return out


def close(t, expected, tol=1e-5):
    got = t.numpy() if hasattr(t, "numpy") else np.asarray(t)
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def check_setup():
    assert dist.is_available() and dist.is_initialized() and dist.get_backend() == "mpi"
    assert (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) == (RANK, WORLD)
    assert int(os.environ["LOCAL_RANK"]) == RANK  # one machine
    try:
        dist.init_process_group("mpi")
    except ValueError as e:
        assert "twice" in str(e)
    else:
        raise AssertionError("a second init_process_group was accepted")


def check_all_reduce():
    xs = inputs((3, 4))
    reductions = {dist.ReduceOp.SUM: np.sum, dist.ReduceOp.AVG: np.mean, dist.ReduceOp.MAX: np.max,
                  dist.ReduceOp.MIN: np.min, dist.ReduceOp.PRODUCT: np.prod}
    for op, ref in reductions.items():
        t = torch.from_numpy(xs[RANK].copy())
        v = t._version
        assert dist.all_reduce(t, op=op) is None
        close(t, ref(np.stack(xs), axis=0))
        assert t._version > v  # written in place, as PyTorch's version counter shows
    # float64, int64, a non-contiguous view (written back through the view), float16, async
    d = inputs((5,), np.float64)
    t = torch.from_numpy(d[RANK].copy())
    dist.all_reduce(t)
    close(t, np.sum(d, 0), 1e-12)
    ints = inputs((6,), np.int64, kind="int")
    t = torch.from_numpy(ints[RANK].copy())
    dist.all_reduce(t, op=dist.ReduceOp.PRODUCT)
    assert t.tolist() == np.prod(ints, 0).tolist()
    base = torch.from_numpy(np.stack([xs[RANK], xs[RANK] * 2]))  # (2, 3, 4)
    view = base[:, 1].t()  # not contiguous
    dist.all_reduce(view, op=dist.ReduceOp.MAX)
    close(base[:, 1], np.max(np.stack([np.stack([x[1], 2 * x[1]]) for x in xs]), 0))
    close(base[:, 0], np.stack([xs[RANK][0], 2 * xs[RANK][0]]))  # the rest untouched
    h = torch.from_numpy(xs[RANK].astype(np.float16))
    dist.all_reduce(h)
    close(h.float(), np.sum([x.astype(np.float16).astype(np.float32) for x in xs], 0), 1e-2)
    t = torch.from_numpy(xs[RANK].copy())
    work = dist.all_reduce(t, async_op=True)
    work.wait()
    assert work.is_completed()
    close(t, np.sum(xs, 0))
    try:
        dist.all_reduce(torch.tensor([1, 2]), op=dist.ReduceOp.AVG)
    except RuntimeError as e:
        assert "AVG" in str(e)
    else:
        raise AssertionError("AVG of an integer tensor was accepted")


def check_broadcast_and_reduce():
    xs = inputs((4,))
    src = WORLD - 1
    t = torch.from_numpy(xs[RANK].copy())
    dist.broadcast(t, src=src)
    close(t, xs[src])
    b = torch.tensor([RANK == 0, True, RANK == 1])
    dist.broadcast(b, src=0)
    assert b.tolist() == [True, True, False]
    t = torch.from_numpy(xs[RANK].copy())
    dist.reduce(t, dst=1, op=dist.ReduceOp.MAX)
    close(t, np.max(xs, 0) if RANK == 1 else xs[RANK])


def check_gathers():
    xs = inputs((2, 3))
    outs = [torch.zeros(2, 3) for _ in range(WORLD)]
    dist.all_gather(outs, torch.from_numpy(xs[RANK]))
    for r in range(WORLD):
        close(outs[r], xs[r])
    flat = torch.zeros(WORLD * 2, 3)
    dist.all_gather_into_tensor(flat, torch.from_numpy(xs[RANK]))
    close(flat, np.concatenate(xs))
    stacked = torch.zeros(WORLD, 2, 3)
    work = dist.all_gather_into_tensor(stacked, torch.from_numpy(xs[RANK]), async_op=True)
    work.wait()
    close(stacked, np.stack(xs))
    big = inputs((WORLD * 2, 3))
    for op, ref in ((dist.ReduceOp.SUM, np.sum), (dist.ReduceOp.AVG, np.mean)):
        out = torch.zeros(2, 3)
        dist.reduce_scatter_tensor(out, torch.from_numpy(big[RANK]), op=op)
        close(out, ref(np.stack(big), 0)[2 * RANK:2 * RANK + 2])
    gl = [torch.zeros(2, 3) for _ in range(WORLD)] if RANK == 1 else None
    dist.gather(torch.from_numpy(xs[RANK]), gl, dst=1)
    if RANK == 1:
        for r in range(WORLD):
            close(gl[r], xs[r])
    out = torch.zeros(2, 3)
    dist.scatter(out, [torch.from_numpy(x) for x in xs] if RANK == 0 else None, src=0)
    close(out, xs[RANK])
    objs = [None] * WORLD
    dist.all_gather_object(objs, {"rank": RANK})
    assert objs == [{"rank": r} for r in range(WORLD)]
    lst = [RANK, "x"] if RANK == 0 else [None, None]
    dist.broadcast_object_list(lst, src=0)
    assert lst == [0, "x"]


def check_point_to_point():
    xs = inputs((3,))
    right, left = (RANK + 1) % WORLD, (RANK - 1) % WORLD
    if WORLD == 1:
        return
    got = torch.zeros(3)
    w = dist.isend(torch.from_numpy(xs[RANK]), dst=right)
    src = dist.recv(got, src=left)
    w.wait()
    assert src == left
    close(got, xs[left])
    got = torch.zeros(3)
    r = dist.irecv(got)  # from any rank
    dist.send(torch.from_numpy(xs[RANK]), dst=right)
    r.wait()
    close(got, xs[left])
    dist.barrier()


def check_new_group():
    """A group of the first and last ranks (with 3 processes rank 1 is outside it)."""
    members = [0, WORLD - 1]
    g = dist.new_group(members)
    xs = inputs((3,))
    t = torch.from_numpy(xs[RANK].copy())
    if RANK not in members:
        assert g is dist.GroupMember.NON_GROUP_MEMBER and dist.get_rank(g) == -1 and dist.get_world_size(g) == -1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert dist.all_reduce(t, group=g) is None
        close(t, xs[RANK])
        assert "does not belong to the given group" in str(caught[0].message)
        return
    assert (dist.get_rank(g), dist.get_world_size(g)) == (members.index(RANK), 2)
    assert dist.get_process_group_ranks(g) == members
    assert dist.get_global_rank(g, 1) == WORLD - 1 and dist.get_group_rank(g, WORLD - 1) == 1
    dist.all_reduce(t, group=g)
    close(t, xs[0] + xs[WORLD - 1])
    b = torch.from_numpy(xs[RANK].copy())
    dist.broadcast(b, src=WORLD - 1, group=g)  # src is a global rank, as in PyTorch
    close(b, xs[WORLD - 1])
    b = torch.from_numpy(xs[RANK].copy())
    dist.broadcast(b, group_src=0, group=g)
    close(b, xs[0])
    if RANK == 0:
        got = torch.zeros(3)
        assert dist.recv(got, group=g) == WORLD - 1  # the sender's global rank
        close(got, xs[WORLD - 1])
    else:
        dist.send(torch.from_numpy(xs[RANK]), dst=0, group=g)
    if WORLD == 3:
        expect(ValueError, "Invalid source rank 1", lambda: dist.broadcast(b, src=1, group=g))
    dist.destroy_process_group(g)


def expect(error, match, fn):
    try:
        fn()
    except error as e:
        assert match in str(e), (match, str(e))
    else:
        raise AssertionError(f"no {error.__name__} ({match})")


def check_errors():
    expect(ValueError, "output tensor size must be equal to world_size times input tensor size",
           lambda: dist.all_gather_into_tensor(torch.zeros(WORLD * 2 + 1), torch.zeros(2)))
    expect(ValueError, "input tensor must be the same size as output size times world size",
           lambda: dist.reduce_scatter_tensor(torch.zeros(2), torch.zeros(WORLD * 2 + 1)))
    expect(ValueError, "must NOT be specified on non-destination ranks" if RANK else "must be specified on destination",
           lambda: dist.gather(torch.zeros(2), None if RANK == 0 else [torch.zeros(2)] * WORLD, dst=0))
    expect(ValueError, "expected a list of", lambda: dist.all_gather([torch.zeros(2)] * (WORLD + 1), torch.zeros(2)))
    expect(ValueError, "Invalid source rank", lambda: dist.broadcast(torch.zeros(2), src=WORLD))
    expect(TypeError, "Expected parameter `tensor` of type torch.Tensor", lambda: dist.all_reduce([1.0]))
    expect(NotImplementedError, "mixed_precision", lambda: DDP(nn.Linear(2, 2), mixed_precision=object()))
    expect(ValueError, "Invalid usage of tensors with different dtypes",
           lambda: dist.all_gather_into_tensor(torch.zeros(2 * WORLD), torch.zeros(2, dtype=torch.float64)))


# ---- data-parallel training against one process on the concatenated batch -----------------------

GLOBAL_BATCH = 12  # divisible by 2 and 3


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3))


def cnn(norm=nn.BatchNorm2d):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), norm(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def batches(shape, steps=4):
    g = np.random.default_rng(7)
    return [(torch.from_numpy(g.standard_normal((GLOBAL_BATCH,) + shape).astype(np.float32)),
             torch.from_numpy(g.integers(0, 3, GLOBAL_BATCH))) for _ in range(steps)]


def shard(t):
    n = GLOBAL_BATCH // WORLD
    return t[RANK * n:(RANK + 1) * n]


def train(model, data, sharded, wrap=lambda m: m, opt_cls=torch.optim.SGD):
    net = wrap(model)
    opt = opt_cls(model.parameters(), lr=0.1)
    for x, y in data:
        if sharded:
            x, y = shard(x), shard(y)
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    return model


def same_state(a, b, tol=1e-5):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        close(sa[k], sb[k].numpy(), tol)


def check_ddp_mlp():
    data = batches((8,))
    ref = train(mlp(), data, sharded=False)
    same_state(train(mlp(), data, sharded=True, wrap=DDP), ref)
    # a different start on rank 1 is replaced by rank 0's parameters at wrap time
    m = mlp()
    if RANK == 1:
        with torch.no_grad():
            m[0].weight.add_(1.0)
    same_state(train(m, data, sharded=True, wrap=DDP), ref)
    # with a compiled model (compiled forward and backward; the averaging hooks run eagerly)
    same_state(train(mlp(), data, sharded=True, wrap=lambda m: DDP(torch.compile(m))), ref)
    # find_unused_parameters walks the compiled backward's graph to the parameters
    same_state(train(mlp(), data, sharded=True, wrap=lambda m: DDP(torch.compile(m), find_unused_parameters=True)),
               ref)
    # Adam, many small buckets: the all-reduces start during backward, one per bucket
    ref = train(mlp(), data, sharded=False, opt_cls=torch.optim.Adam)
    same_state(train(mlp(), data, sharded=True, wrap=lambda m: DDP(m, bucket_cap_mb=1e-4),
                     opt_cls=torch.optim.Adam), ref)


def check_ddp_overlaps_backward():
    """Each bucket's all-reduce starts from a gradient hook, in bucket order, before the backward
    pass has produced every gradient; they are waited for at its end."""
    from graphc.nn.parallel import distributed as ddp_module
    events = []
    start, ready = ddp_module._Bucket.start, ddp_module.DistributedDataParallel._ready
    ddp_module._Bucket.start = lambda b, g: (events.append(("start", len(b.params))), start(b, g))[1]
    ddp_module.DistributedDataParallel._ready = lambda s, p, used: (events.append("ready"), ready(s, p, used))[1]
    try:
        m = mlp()
        net = DDP(m, bucket_cap_mb=1e-6)  # one parameter per bucket
        x, y = batches((8,), steps=1)[0]
        F.cross_entropy(net(shard(x)), shard(y)).backward()
    finally:
        ddp_module._Bucket.start, ddp_module.DistributedDataParallel._ready = start, ready
    assert len(net._buckets) == 4
    assert events == ["ready", ("start", 1)] * 4, events  # each bucket starts as soon as it is full
    assert [b.params[0] for b in net._buckets] == list(m.parameters())[::-1]
    ref = mlp()
    F.cross_entropy(ref(x), y).backward()
    for a, b in zip(m.parameters(), ref.parameters()):
        close(a.grad, b.grad.numpy())


def check_ddp_cnn_sync_batchnorm():
    data = batches((1, 6, 6))
    ref = train(cnn(), data, sharded=False)
    same_state(train(cnn(nn.SyncBatchNorm), data, sharded=True, wrap=DDP), ref, 1e-4)
    conv = nn.SyncBatchNorm.convert_sync_batchnorm(cnn())
    assert isinstance(conv[1], nn.SyncBatchNorm)
    same_state(train(conv, data, sharded=True, wrap=DDP), ref, 1e-4)
    # plain BatchNorm: each forward starts from rank 0's running statistics (broadcast_buffers)
    (x1, _), (x2, _) = data[:2]
    m = DDP(cnn())
    m(shard(x1))
    m(shard(x2))
    ref = cnn()
    ref(x1[:GLOBAL_BATCH // WORLD])  # what rank 0's first forward left
    ref(shard(x2))
    close(m.module[1].running_mean, ref[1].running_mean.numpy())
    close(m.module[1].running_var, ref[1].running_var.numpy())


def check_no_sync_and_unused():
    data = batches((8,), steps=1)
    x, y = data[0]
    ref = mlp()
    F.cross_entropy(ref(x), y).backward()
    m = mlp()
    net = DDP(m)
    half = GLOBAL_BATCH // WORLD // 2
    xs, ys = shard(x), shard(y)
    with net.no_sync():
        (F.cross_entropy(net(xs[:half]), ys[:half]) / 2).backward()
    g_local = m[0].weight.grad.numpy().copy()
    (F.cross_entropy(net(xs[half:]), ys[half:]) / 2).backward()
    for a, b in zip(m.parameters(), ref.parameters()):
        close(a.grad, b.grad.numpy())
    assert not np.allclose(g_local, ref[0].weight.grad.numpy())  # no_sync did not average

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(1)
            self.a, self.b, self.never = nn.Linear(4, 2), nn.Linear(4, 2), nn.Linear(4, 2)

        def forward(self, x, use_b):
            return self.a(x) + (self.b(x) if use_b else 0)

    m = Branchy()
    net = DDP(m, find_unused_parameters=True)
    inp = torch.ones(3, 4)
    net(inp, use_b=RANK == 0).sum().backward()
    close(m.b.bias.grad, np.full(2, 3.0 / WORLD))  # rank 0's gradient, averaged with zeros
    close(m.a.bias.grad, np.full(2, 3.0))
    assert m.never.weight.grad is None  # unused on every rank
    m = Branchy()
    net = DDP(m)
    try:
        net(inp, use_b=False).sum().backward()
    except RuntimeError as e:
        assert "find_unused_parameters=True" in str(e)
    else:
        raise AssertionError("an unused parameter without find_unused_parameters was accepted")


def check_compiled_whole_step():
    """A training step through DistributedDataParallel compiles into one graph (fullgraph=True):
    the gradient averages (and the buffers' broadcast) are collective nodes; 4 steps equal one
    process on the whole batch. Compiling the wrapper alone breaks the graph, saying why."""
    # blocking all_reduce and broadcast are nodes of a compiled graph, as the user calls them
    xs = inputs((3,))

    @torch.compile(fullgraph=True)
    def exchange(t):
        u = t * 2
        dist.all_reduce(u)
        v = t + float(RANK)
        dist.broadcast(v, src=WORLD - 1)
        return u, v

    for _ in range(2):
        u, v = exchange(torch.from_numpy(xs[RANK].copy()))
        close(u, 2 * np.sum(xs, 0))
        close(v, xs[WORLD - 1] + (WORLD - 1))
    # the other collectives (work handles, lists) break the graph, naming themselves
    try:
        torch.compile(lambda t: dist.all_gather([torch.zeros(3) for _ in range(WORLD)], t), fullgraph=True)(
            torch.ones(3))
    except torch.GraphBreakError as e:
        assert "all_gather" in str(e)
    else:
        raise AssertionError("all_gather compiled into a graph")
    # (Adam on the MLP: on the CNN it would turn the conv bias's gradient, zero up to rounding
    # before BatchNorm, into full-size steps of rounding noise)
    # (the reference: one process on the whole batch, with plain BatchNorm)
    for make_ref, make, shape, opt_cls, tol in ((mlp, mlp, (8,), torch.optim.Adam, 1e-5),
                                                (cnn, lambda: cnn(nn.SyncBatchNorm), (1, 6, 6), torch.optim.SGD, 1e-5)):
        data = batches(shape)
        ref = train(make_ref(), data, sharded=False, opt_cls=opt_cls)
        m = make()
        net = DDP(m)
        opt = opt_cls(m.parameters(), lr=0.1)

        @torch.compile(fullgraph=True)
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss.detach()

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no graph break, no eager fallback
            for x, y in data:
                step(shard(x), shard(y))
        same_state(m, ref, tol)
        assert step.recompiles <= 1, step.recompiles  # the first step creates the optimizer state
    # plain BatchNorm: rank 0's running statistics are broadcast inside the graph before each
    # forward, as DDP does eagerly (after the first step each rank's differ: its own shard's)
    data = batches((1, 6, 6), steps=2)
    runs = []
    for compiled in (True, False):
        m = cnn()
        net = DDP(m)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)

        def bn_step(x, y, net=net, opt=opt):
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()

        run = torch.compile(bn_step, fullgraph=True) if compiled else bn_step
        for x, y in data:
            run(shard(x), shard(y))
        runs.append(m)
    same_state(runs[0], runs[1], 1e-5)
    # compiling the wrapper itself (PyTorch's torch.compile(DDP(model))): its forward runs eagerly
    data = batches((8,))
    ref = train(mlp(), data, sharded=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same_state(train(mlp(), data, sharded=True, wrap=lambda m: torch.compile(DDP(m))), ref)
    assert any("DistributedDataParallel" in str(w.message) for w in caught), [str(w.message) for w in caught]
    try:
        torch.compile(DDP(mlp()), fullgraph=True)(data[0][0])
    except torch.GraphBreakError as e:
        assert "DistributedDataParallel" in str(e)
    else:
        raise AssertionError("fullgraph=True compiled DistributedDataParallel's forward alone")


def check_cuda_tensors():
    """cuda tensors go through the host (CuPy's stand-in, tests/fake_cupy.py, unless
    GRAPHC_REAL_CUDA=1): collectives write back into device memory, DDP trains a cuda model."""
    import sys

    import pytest
    patch = pytest.MonkeyPatch()
    if os.environ.get("GRAPHC_REAL_CUDA") != "1":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
        import fake_cupy
        fake_cupy.install(patch)
        fake_cupy.reset_runtime(patch)
    try:
        xs = inputs((3, 2))
        t = torch.from_numpy(xs[RANK].copy()).cuda()
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        assert t.device.type == "cuda"
        close(t.cpu(), np.mean(xs, 0))
        out = torch.zeros(WORLD * 3, 2, device="cuda")
        dist.all_gather_into_tensor(out, torch.from_numpy(xs[RANK]).cuda())
        close(out.cpu(), np.concatenate(xs))
        b = torch.from_numpy(xs[RANK].copy()).cuda()
        dist.broadcast(b, src=0)
        close(b.cpu(), xs[0])
        data = batches((8,))
        ref = train(mlp(), data, sharded=False)
        m = mlp().cuda()
        net = DDP(m)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for x, y in data:
            opt.zero_grad()
            F.cross_entropy(net(shard(x).cuda()), shard(y).cuda()).backward()
            opt.step()
        assert m[0].weight.grad.device.type == "cuda"
        same_state(m.cpu(), ref)
    finally:
        patch.undo()


CHECKS = [check_setup, check_all_reduce, check_broadcast_and_reduce, check_gathers, check_point_to_point,
          check_new_group, check_errors, check_ddp_mlp, check_ddp_overlaps_backward,
          check_ddp_cnn_sync_batchnorm, check_no_sync_and_unused,
          check_compiled_whole_step, check_cuda_tensors]

if __name__ == "__main__":
    for check in CHECKS:
        check()
        dist.barrier()
        if RANK == 0:
            print(f"ok {check.__name__}", flush=True)
    dist.destroy_process_group()
    assert not dist.is_initialized()
