"""Progress reporting for long steps: tqdm when it is installed, else a percentage line.

A reporter is a callable ``report(step, done, total)``, the shape
:func:`crmkit.datasets.load` calls. tqdm is the ``progress`` extra; without it (or with
``use_tqdm=False``) a plain ``step: 45% (4,500/10,000)`` line is written, rewritten in
place on a terminal and only at 25 % steps elsewhere. Steps with fewer than ``min_total``
records are not shown.

Examples
--------
>>> import io
>>> stream = io.StringIO()
>>> report = ProgressReporter(stream, use_tqdm=False)
>>> report("accounts", 0, 200)
>>> report("accounts", 200, 200)
>>> stream.getvalue().splitlines()[-1]
'loading accounts: 100% (200/200)'
"""

from __future__ import annotations

from typing import Any, TextIO

__all__ = ["ProgressReporter"]


class ProgressReporter:
    """Shows ``(step, done, total)`` updates on ``stream`` (a text stream, e.g. stderr)."""

    def __init__(
        self,
        stream: TextIO,
        *,
        use_tqdm: bool | None = None,
        verb: str = "loading",
        min_total: int = 0,
    ) -> None:
        self._min_total = min_total
        self._stream = stream
        self._verb = verb
        self._tqdm: Any = None
        if use_tqdm is not False:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            self._tqdm = tqdm
        self._bar: Any = None
        self._step: str | None = None
        self._shown = -1
        self._tty = bool(getattr(stream, "isatty", lambda: False)())

    def __call__(self, step: str, done: int, total: int) -> None:
        if total < self._min_total:
            return
        if step != self._step:
            self.close()
            self._step = step
            self._shown = -1
            if self._tqdm is not None:
                self._bar = self._tqdm(
                    total=total,
                    desc=f"{self._verb} {step}",
                    unit="rec",
                    file=self._stream,
                    leave=True,
                    dynamic_ncols=True,
                )
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if done >= total:
                self.close()
            return
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        every = 1 if self._tty else 25
        if percent // every == self._shown // every and done < total:
            return
        self._shown = percent
        line = f"{self._verb} {step}: {percent}% ({done:,}/{total:,})"
        if self._tty:
            self._stream.write("\r" + line + ("\n" if done >= total else ""))
        else:
            self._stream.write(line + "\n")
        self._stream.flush()
        if done >= total:
            self._step = None

    def close(self) -> None:
        """Finish the current bar (called automatically when a step completes)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
