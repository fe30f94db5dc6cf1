"""``SummaryWriter``: PyTorch's API over the tensorboard package's ``EventFileWriter``."""
from __future__ import annotations

import os
import socket
import threading
import time
from datetime import datetime
from typing import Any

from tensorboard.compat.proto.event_pb2 import Event, SessionLog
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from . import summary


class SummaryWriter:
    """Writes TensorBoard event files to ``log_dir`` (default ``runs/<date>_<host><comment>``), as
    ``torch.utils.tensorboard.SummaryWriter`` does; view them with ``tensorboard --logdir runs``."""

    def __init__(self, log_dir: str | os.PathLike | None = None, comment: str = "", purge_step: int | None = None,
                 max_queue: int = 10, flush_secs: int = 120, filename_suffix: str = "") -> None:
        if log_dir is None:
            stamp = datetime.now().strftime("%b%d_%H-%M-%S")
            log_dir = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = os.fspath(log_dir)
        self.purge_step = purge_step
        self.max_queue, self.flush_secs, self.filename_suffix = max_queue, flush_secs, filename_suffix
        self._writer = self._open(self.log_dir)
        self._scalar_writers: dict[str, EventFileWriter] = {}  # add_scalars: one run per tag
        self._lock = threading.Lock()
        self._closed = False
        if purge_step is not None:  # TensorBoard drops events at or after this step from earlier runs
            self._writer.add_event(Event(step=purge_step, wall_time=time.time(),
                                         session_log=SessionLog(status=SessionLog.START)))

    def _open(self, logdir: str) -> EventFileWriter:
        return EventFileWriter(logdir, self.max_queue, self.flush_secs, self.filename_suffix)

    def get_logdir(self) -> str:
        return self.log_dir

    def _add(self, s, global_step: int | None, walltime: float | None, writer: EventFileWriter | None = None) -> None:
        if self._closed:
            raise RuntimeError("SummaryWriter is closed; open a new one to write more")
        event = Event(summary=s, wall_time=time.time() if walltime is None else walltime)
        if global_step is not None:
            event.step = int(summary.scalar_value(global_step, "global_step"))
        (writer or self._writer).add_event(event)

    # ---- what can be logged ---------------------------------------------------------------

    def add_scalar(self, tag: str, scalar_value: Any, global_step: int | None = None, walltime: float | None = None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        self._add(summary.scalar(tag, scalar_value, new_style, double_precision), global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step: int | None = None,
                    walltime: float | None = None) -> None:
        """Several curves in one chart: each tag is its own run, ``<log_dir>/<main_tag>_<tag>``."""
        walltime = time.time() if walltime is None else walltime
        for tag, value in tag_scalar_dict.items():
            logdir = os.path.join(self.log_dir, f"{main_tag.replace('/', '_')}_{tag}")
            with self._lock:
                writer = self._scalar_writers.get(logdir)
                if writer is None:
                    writer = self._scalar_writers[logdir] = self._open(logdir)
            self._add(summary.scalar(main_tag, value), global_step, walltime, writer)

    def add_histogram(self, tag: str, values: Any, global_step: int | None = None, bins: Any = "tensorflow",
                      walltime: float | None = None, max_bins: int | None = None) -> None:
        self._add(summary.histogram(tag, values, bins, max_bins), global_step, walltime)

    def add_image(self, tag: str, img_tensor: Any, global_step: int | None = None, walltime: float | None = None,
                  dataformats: str = "CHW") -> None:
        self._add(summary.image(tag, img_tensor, dataformats), global_step, walltime)

    def add_images(self, tag: str, img_tensor: Any, global_step: int | None = None, walltime: float | None = None,
                   dataformats: str = "NCHW") -> None:
        self._add(summary.images(tag, img_tensor, dataformats), global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None) -> None:
        self._add(summary.text(tag, text_string), global_step, walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete: dict | None = None,
                    run_name: str | None = None, global_step: int | None = None) -> None:
        """One hparams session in its own run (``<log_dir>/<run_name>``, default the current
        time), with the metrics as scalars there, as PyTorch writes it."""
        if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        summaries = summary.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        logdir = os.path.join(self.log_dir, run_name or str(time.time()))
        writer = self._open(logdir)
        try:
            for s in summaries:
                self._add(s, global_step, None, writer)
            for k, v in metric_dict.items():
                self._add(summary.scalar(k, v), global_step, None, writer)
        finally:
            writer.close()

    def add_graph(self, model, input_to_model=None, verbose: bool = False, use_strict_trace: bool = True) -> None:
        """Trace ``model`` on ``input_to_model`` (``graphc.jit.trace``) and write its IR graph for
        TensorBoard's Graphs tab; ``verbose`` also prints the IR text."""
        from ... import jit
        from .graph import graph_def
        if self._closed:
            raise RuntimeError("SummaryWriter is closed; open a new one to write more")
        if input_to_model is None:
            raise ValueError("add_graph needs input_to_model: graphc draws the graph it traces on that input")
        program = model if isinstance(model, jit.Program) else jit.trace(model, input_to_model, check_trace=False)
        if verbose:
            print(program.code)
        gd = graph_def(program.graph, program._bindings)
        self._writer.add_event(Event(graph_def=gd.SerializeToString(), wall_time=time.time()))

    # ---- lifetime -------------------------------------------------------------------------

    def flush(self) -> None:
        if self._closed:
            return
        self._writer.flush()
        for w in list(self._scalar_writers.values()):
            w.flush()

    def close(self) -> None:
        if self._closed:
            return
        self._writer.close()
        for w in list(self._scalar_writers.values()):
            w.close()
        self._closed = True

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
