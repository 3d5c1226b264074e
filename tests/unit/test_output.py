"""The output sink and the redactor, without an engine."""

from __future__ import annotations

from cockpit import output
from cockpit.output import (
    MAX_LINE,
    OutputSink,
    count_lines,
    find_lines,
    line_times,
    read_ahead,
    read_back,
    times_path,
)
from cockpit.redact import Redactor


def sink(tmp_path, *secrets, window=100) -> OutputSink:
    return OutputSink(tmp_path / "step.log", Redactor(secrets), window)


def test_a_character_split_across_reads_is_kept_whole(tmp_path):
    out = sink(tmp_path)
    data = "naïve café ✓\n".encode()
    for byte in data:
        out.write("out", bytes([byte]))
    out.close()
    assert (tmp_path / "step.log").read_text() == "naïve café ✓\n"
    assert out.take_batch() == ((("out", "naïve café ✓"),), 0, 1)


def test_a_secret_split_byte_by_byte_is_masked(tmp_path):
    out = sink(tmp_path, "hunter2-password")
    for byte in b"login hunter2-password ok\n":
        out.write("err", bytes([byte]))
    out.close()
    assert (tmp_path / "step.log").read_text() == "[stderr] login *** ok\n"


def test_an_endless_line_is_cut_without_leaking_a_secret(tmp_path):
    secret = "s3cr3t-" * 4
    out = sink(tmp_path, secret)
    filler = "x" * (MAX_LINE - 10)
    out.write("out", (filler + secret[:12]).encode())
    out.write("out", (secret[12:] + "y" * MAX_LINE).encode())
    out.close()
    text = (tmp_path / "step.log").read_text()
    assert secret not in text.replace("\n", "")
    assert "***" in text
    assert out.lines == text.count("\n")


def test_output_without_a_final_newline_is_kept(tmp_path):
    out = sink(tmp_path)
    out.write("out", b"no newline at the end")
    out.close()
    assert (tmp_path / "step.log").read_text() == "no newline at the end\n"
    assert out.lines == 1


def test_batches_hold_at_most_the_window(tmp_path):
    out = sink(tmp_path, window=10)
    out.write("out", "".join(f"{n}\n" for n in range(1000)).encode())
    out.write("err", b"last\n")
    lines, dropped, printed = out.take_batch()
    assert len(lines) == 10 and dropped == 991 and printed == 1001
    assert lines[-1] == ("err", "last") and lines[0] == ("out", "991")
    assert out.take_batch() == ((), 0, 0)


def test_a_batch_counts_every_line_printed_even_those_dropped_between_batches(tmp_path):
    out = sink(tmp_path, window=10)
    line = "x" * 99 + "\n"  # 100 characters: the pending text overflows in 42,000 lines
    for _ in range(42):
        out.write("out", (line * 1000).encode())
    lines, dropped, printed = out.take_batch()
    assert printed == 42_000 == out.lines  # what the journal records
    assert len(lines) == 10 and dropped == 41_990
    out.write("err", b"one more\n")
    out.close()
    assert out.take_batch() == ((("err", "one more"),), 0, 1)


def test_redactor_masks_each_line_of_a_multiline_secret():
    redactor = Redactor(["-----BEGIN KEY-----\nabcdef123456\n-----END KEY-----"])
    assert redactor.redact("key: abcdef123456") == "key: ***"
    assert redactor.redact("-----END KEY-----") == "***"


def test_read_back_tells_the_streams_apart_and_keeps_the_last_lines(tmp_path):
    path = tmp_path / "step.log"
    path.write_text("one\n[stderr] two\n[cockpit] three\nfour [stderr] not a mark\n")
    assert read_back(path, 3) == [
        ("err", "two"),
        ("info", "three"),
        ("out", "four [stderr] not a mark"),
    ]
    assert read_back(tmp_path / "none.log", 3) == []


def test_read_back_reads_only_the_end_of_a_long_file(tmp_path, monkeypatch):
    path = tmp_path / "step.log"
    path.write_text("".join(f"line {n}\n" for n in range(100_000)) + "[stderr] no newline")
    monkeypatch.setattr(output, "READ_BACK_BLOCK", 64)  # lines cut across blocks
    assert read_back(path, 3) == [
        ("out", "line 99998"),
        ("out", "line 99999"),
        ("err", "no newline"),
    ]
    assert read_back(path, 0) == []
    short = tmp_path / "short.log"
    short.write_text("a\nb\n")
    assert read_back(short, 10) == [("out", "a"), ("out", "b")]


def test_count_lines_counts_the_file_and_the_tail_segments_left_beside_it(tmp_path):
    path = tmp_path / "step.log"
    assert count_lines(path) == 0
    path.write_text("a\nb\n")
    path.with_name("step.log.tail2").write_text("c\n")
    assert count_lines(path) == 3


def test_find_lines_counts_every_matching_line_once_and_where_it_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(output, "SEARCH_BLOCK", 16)  # lines cut across blocks
    path = tmp_path / "s.log"
    path.write_bytes(b"alpha\nNeedle one needle\n[stderr] x\nbeta\nlast NEEDLE")
    found = find_lines(path, "needle")
    assert list(found.lines) == [1, 4] and list(found.offsets) == [6, 40]
    assert read_back(path, 1, end=found.offsets[1]) == [("out", "beta")]
    assert read_ahead(path, found.offsets[0], 2) == [("out", "Needle one needle"), ("err", "x")]
    assert len(find_lines(path, "absent")) == 0
    assert len(find_lines(tmp_path / "none.log", "needle")) == 0


def test_the_sidecar_says_when_each_write_was_read_and_the_log_stays_the_bytes(tmp_path):
    path = tmp_path / "s.log"
    sink = OutputSink(path, Redactor([]), window=10)
    sink.write("out", b"a\nb\n")
    sink.write("err", b"c\n")
    sink.close()
    assert path.read_bytes() == b"a\nb\n[stderr] c\n"
    entries = [line.split() for line in times_path(path).read_text().splitlines()]
    assert [first for first, _ in entries] == ["0", "2"]
    one, two = (float(at) for _, at in entries)
    assert line_times(path, 1, 2) == [one, two]
    resumed = OutputSink(path, Redactor([]), window=10)  # resume numbers on from the file
    resumed.write("out", b"d\n")
    resumed.close()
    assert times_path(path).read_text().splitlines()[-1].startswith("3 ")
    assert line_times(tmp_path / "none.log", 0, 2) == [None, None]


def capped_flood(tmp_path, monkeypatch) -> OutputSink:
    """A step printing 600 lines past a 4 KiB cap, line N read at time N."""
    clock = 0.0
    monkeypatch.setattr(output.time, "time", lambda: clock)
    out = OutputSink(tmp_path / "capped.log", Redactor([]), window=10, max_bytes=4096)
    for n in range(600):
        clock = float(n)
        out.write("out", f"line {n:04}\n".encode())
    return out


def times_by_line(path) -> dict[str, float | None]:
    """Each line of a step's output (its file, then any segment) and the time it has."""
    parts = [path, *output.present_segments(path)]
    shown = [line for part in parts for line in part.read_text().splitlines()]
    return dict(zip(shown, line_times(path, 0, len(shown)), strict=True))


def test_the_times_stay_with_the_lines_kept_when_the_middle_is_dropped(tmp_path, monkeypatch):
    out = capped_flood(tmp_path, monkeypatch)
    while_running = times_by_line(out.path)  # the head, then the tail segments
    out.close()
    assert out.truncated and not output.present_segments(out.path)
    kept = times_by_line(out.path)
    assert len(kept) < 600 and "line 0599" in kept  # the middle is gone, the end is kept
    for times in (while_running, kept):
        wrong = {line: at for line, at in times.items() if line.startswith("line ")
                 and at != float(line.split()[1])}  # fmt: skip
        assert not wrong, wrong
    assert not list(tmp_path.glob("*.tail*"))  # the segments' sidecars are folded in too


def test_a_killed_capped_steps_times_are_folded_in_on_resume(tmp_path, monkeypatch):
    out = capped_flood(tmp_path, monkeypatch)  # never closed: the cockpit was killed
    OutputSink(out.path, Redactor([]), window=10)  # resume folds the segments in
    kept = times_by_line(out.path)
    assert "line 0599" in kept and kept["line 0599"] == 599.0
    assert all(at == float(line.split()[1]) for line, at in kept.items() if line[:5] == "line ")


def test_find_lines_searches_the_tail_segments_of_a_capped_step_still_running(tmp_path):
    path = tmp_path / "capped.log"
    sink = OutputSink(path, Redactor([]), window=10, max_bytes=4096)
    for n in range(300):
        sink.write("out", f"line {n:04}\n".encode())
    found = find_lines(path, "LINE 0299")  # past the head: only in a segment for now
    part, line, offset = found.where(0)
    assert len(found) == 1 and part != path and part.exists()
    assert read_ahead(part, offset, 1) == [("out", "line 0299")]
    assert line == count_lines(path) - 1
    sink.close()
    assert len(find_lines(path, "line 0299")) == 1  # folded into the file at the end
