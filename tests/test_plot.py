"""`seqgen plot` and seqgen.plots: log and MIDI reading, the pictures' pixels, bad input."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from seqgen import plots
from seqgen.errors import ConfigError, CorpusError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def write_log(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def records(steps=(100, 200, 300), valid=True, scale=1.0):
    out = []
    for i, step in enumerate(steps):
        r = {"step": step, "epoch": i // 2, "elapsed": 1.5 * (i + 1), "train_loss": scale * (3.0 - 0.5 * i),
             "lr": 0.002, "tokens_per_s": 1000.0}
        if valid:
            r["valid_loss"] = scale * (2.5 - 0.4 * i)
        out.append(r)
    return out


def png_size(path):
    """(width, height) from the PNG header, checking the signature and the IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pixels(path):
    """(H, W, 3) uint8 RGB of a PNG file."""
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def rgb(colour):
    from matplotlib.colors import to_rgb

    return np.array([round(255 * c) for c in to_rgb(colour)])


def colour_near(image, fig, ax, x, y, colour, radius=2):
    """Is ``colour`` among the pixels within ``radius`` of data point (x, y) of ``ax``?"""
    px, py = ax.transData.transform((x, y))
    row, col = int(round(fig.bbox.height - py)), int(round(px))
    patch = image[row - radius:row + radius + 1, col - radius:col + radius + 1].reshape(-1, 3).astype(int)
    return bool((np.abs(patch - rgb(colour)).max(axis=1) <= 12).any())


def count_colour(image, colour, tolerance=12):
    return int((np.abs(image.astype(int) - rgb(colour)).max(axis=2) <= tolerance).sum())


# -- reading ---------------------------------------------------------------------------------

def test_read_log_gives_the_series(tmp_path):
    rows = records()
    rows[1].pop("valid_loss")  # an evaluation without validation
    [run] = plots.read_log(write_log(tmp_path / "run.jsonl", rows))
    assert run.name == "run.jsonl"
    np.testing.assert_array_equal(run.step, [100, 200, 300])
    np.testing.assert_array_equal(run.elapsed, [1.5, 3.0, 4.5])
    np.testing.assert_array_equal(run.train_loss, [3.0, 2.5, 2.0])
    assert run.valid_loss[0] == 2.5 and np.isnan(run.valid_loss[1]) and run.valid_loss[2] == pytest.approx(1.7)


def test_a_step_going_back_starts_another_run(tmp_path):
    path = write_log(tmp_path / "run.jsonl", records() + records(steps=(100, 200), scale=2.0))
    first, second = plots.read_log(path)
    assert (first.name, second.name) == ("run.jsonl", "run.jsonl #2")
    np.testing.assert_array_equal(first.step, [100, 200, 300])
    np.testing.assert_array_equal(second.train_loss, [6.0, 5.0])


def test_json_array_and_blank_lines(tmp_path):
    (tmp_path / "h.json").write_text(json.dumps(records()))
    np.testing.assert_array_equal(plots.read_log(tmp_path / "h.json")[0].step, [100, 200, 300])
    (tmp_path / "b.jsonl").write_text("\n" + json.dumps(records()[0]) + "\n\n")
    assert len(plots.read_log(tmp_path / "b.jsonl")[0].step) == 1


@pytest.mark.parametrize("content, match", [
    ("", r"run.jsonl: empty log"),
    ("\n  \n", r"run.jsonl: empty log"),
    ('{"step": 1, "elapsed": 1, "train_loss": 2}\n{"step": 2,\n', r"run.jsonl, line 2: not JSON"),
    ("[1, 2]\n", r"run.jsonl, line 1: not a JSON object"),
    ('{"step": 1, "train_loss": 2}\n', r"run.jsonl, line 1: no 'elapsed'"),
    ('{"step": 1, "elapsed": 1, "train_loss": "low"}\n', r"line 1: 'train_loss' is not a number"),
    ('{"step": true, "elapsed": 1, "train_loss": 2}\n', r"line 1: 'step' is not a number"),
])
def test_bad_logs_name_the_file_and_line(tmp_path, content, match):
    (tmp_path / "run.jsonl").write_text(content)
    with pytest.raises(CorpusError, match=match):
        plots.read_log(tmp_path / "run.jsonl")


def test_read_notes_in_beats(tmp_path, write_midi):
    # tpb 480: C4 for beats [0, 1), E4 for [1.5, 3.5) on track 2; drums are left out
    path = write_midi(tmp_path / "a.mid", [[(60, 0, 480, 0), (36, 0, 480, 9)], [(64, 720, 1680, 1)]])
    notes = plots.read_notes(path)
    order = np.argsort(notes.start)
    np.testing.assert_array_equal(notes.pitch[order], [60, 64])
    np.testing.assert_allclose(notes.start[order], [0.0, 1.5])
    np.testing.assert_allclose(notes.end[order], [1.0, 3.5])


def test_note_names():
    assert [plots.note_name(p) for p in (21, 60, 61, 69, 127)] == ["A0", "C4", "C#4", "A4", "G9"]


# -- pictures --------------------------------------------------------------------------------

def test_loss_curves_png(tmp_path):
    a = write_log(tmp_path / "a.jsonl", records())
    b = write_log(tmp_path / "b.jsonl", records(scale=1.5))
    out = tmp_path / "loss.png"
    fig = plots.plot_runs([a, b], out)
    assert png_size(out) == (1280, 420)  # two panels of 6.4 x 4.2 in at 100 dpi
    image = pixels(out)
    assert image.std() > 20  # not blank
    step_ax, time_ax = fig.axes[:2]
    for ax, x in ((step_ax, 200), (time_ax, 3.0)):  # each run's validation point where its data says
        assert colour_near(image, fig, ax, x, 2.1, "C0")
        assert colour_near(image, fig, ax, x, 1.5 * 2.1, "C1")
        assert not colour_near(image, fig, ax, x, 1.5 * 2.1, "C0")
    assert step_ax.get_xlabel() == "step" and time_ax.get_xlabel() == "training time (s)"
    assert step_ax.get_ylabel() == "loss (nats/token)"
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == ["a.jsonl: validation", "a.jsonl: train loss",
                      "b.jsonl: validation", "b.jsonl: train loss"]


def test_one_panel_and_time_units(tmp_path):
    rows = [dict(r, elapsed=r["elapsed"] * 3600) for r in records()]
    del rows[0]["valid_loss"]
    out = tmp_path / "loss.png"
    fig = plots.plot_runs([write_log(tmp_path / "a.jsonl", rows)], out, x="time", dpi=50)
    assert png_size(out) == (320, 210)
    [ax] = fig.axes
    assert ax.get_xlabel() == "training time (h)"
    image = pixels(out)
    assert colour_near(image, fig, ax, 3.0, 2.1, "C0")  # 10800 s = 3 h
    assert not colour_near(image, fig, ax, 1.5, 2.5, "C0")  # no validation at the first evaluation


def test_the_figure_uses_the_agg_canvas_and_leaves_the_backend_alone(tmp_path):
    import matplotlib

    before = matplotlib.get_backend()
    fig = plots.plot_runs([write_log(tmp_path / "a.jsonl", records())], tmp_path / "x.png")
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"
    assert matplotlib.get_backend() == before


def test_piano_roll_png_has_notes_where_the_notes_are(tmp_path, write_midi):
    a = write_midi(tmp_path / "a.mid", [[(60, 0, 960, 0), (67, 1920, 2880, 0)]])  # C4 beats 0-2, G4 4-6
    b = write_midi(tmp_path / "b.mid", [[(72, 0, 1920, 0)]])  # C5 beats 0-4
    out = tmp_path / "roll.png"
    fig = plots.plot_piano_rolls([a, b], out)
    assert png_size(out) == (1000, 450)  # two rolls of 5 x 4.5 in at 100 dpi
    image = pixels(out)
    assert image.std() > 20
    ax_a, ax_b = fig.axes
    assert colour_near(image, fig, ax_a, 1.0, 60, plots.NOTE_COLOUR)
    for beat, inside in ((3.85, False), (4.15, True), (5.85, True), (6.15, False)):  # G4's edges
        assert colour_near(image, fig, ax_a, beat, 67, plots.NOTE_COLOUR, radius=1) == inside, beat
    assert not colour_near(image, fig, ax_a, 3.0, 60, plots.NOTE_COLOUR)  # the rest between them
    assert not colour_near(image, fig, ax_a, 1.0, 67, plots.NOTE_COLOUR)  # G4 has not started
    assert colour_near(image, fig, ax_b, 2.0, 72, plots.NOTE_COLOUR)
    assert not colour_near(image, fig, ax_b, 2.0, 60, plots.NOTE_COLOUR)
    # each note is a box of about (beats x px/beat) by (0.8 x px/semitone): the red area matches
    def area(ax, beats):
        (x0, y0), (x1, y1) = ax.transData.transform([(0, 0), (beats, 0.8)])
        return (x1 - x0) * (y1 - y0)
    expected = area(ax_a, 2) + area(ax_a, 2) + area(ax_b, 4)
    assert 0.8 * expected < count_colour(image, plots.NOTE_COLOUR) < 1.1 * expected
    labels = [t.get_text() for t in ax_a.get_yticklabels()]
    assert "C4" in labels and "G4" in labels and "C5" in labels


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def broken(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(PNG_SIGNATURE)
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken)
    log = write_log(tmp_path / "a.jsonl", records())
    with pytest.raises(OSError, match="disk full"):
        plots.plot_runs([log], tmp_path / "loss.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]


def test_library_errors(tmp_path):
    with pytest.raises(ConfigError, match="cannot mix"):
        plots.input_kind(["a.jsonl", "b.mid"])
    with pytest.raises(ConfigError, match="x must be"):
        plots.draw_runs(plots.read_log(write_log(tmp_path / "a.jsonl", records())), x="epoch")


# -- the command -----------------------------------------------------------------------------

def test_plot_command_writes_both_kinds(tmp_path, cli_run, write_midi):
    log = write_log(tmp_path / "run.jsonl", records())
    result = cli_run("plot", log, "-o", tmp_path / "loss.png", "--x", "step")
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "loss.png") == (640, 420)
    mids = [write_midi(tmp_path / f"{i}.mid", [[(60 + i, 0, 480, 0)]]) for i in range(3)]
    result = cli_run("plot", *mids, "-o", tmp_path / "roll.png")
    assert result.exit_code == 0, result.output
    assert png_size(tmp_path / "roll.png") == (1500, 450)


def test_existing_output_is_kept_without_force(tmp_path, cli_run):
    log = write_log(tmp_path / "run.jsonl", records())
    out = tmp_path / "loss.png"
    out.write_bytes(b"precious")
    result = cli_run("plot", log, "-o", out)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {out}: already exists; pass --force to overwrite it"
    assert out.read_bytes() == b"precious"
    assert cli_run("plot", log, "-o", out, "--force").exit_code == 0
    assert png_size(out) == (1280, 420)


def garbage_midi(tmp_path):
    (tmp_path / "bad.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\xff\xff")
    return "bad.mid"


@pytest.mark.parametrize("make_inputs, output, message", [
    (lambda d: ["run.jsonl", "a.mid"], "out.png", "cannot mix training logs and MIDI files"),
    (lambda d: ["notes.txt"], "out.png", "notes.txt: cannot tell what to plot from the suffix '.txt'"),
    (lambda d: ["empty.jsonl"], "out.png", "empty.jsonl: empty log (no evaluations)"),
    (lambda d: ["broken.jsonl"], "out.png", "broken.jsonl, line 2: not JSON"),
    (lambda d: ["missing.jsonl"], "out.png", "missing.jsonl: no such file"),
    (lambda d: [garbage_midi(d)], "out.png", "bad.mid: not a valid MIDI file"),
    (lambda d: ["missing.mid"], "out.png", "missing.mid: no such file"),
    (lambda d: ["run.jsonl"], "no/such/folder/out.png", "folder"),
    (lambda d: ["run.jsonl"], "out.gif", "unsupported image type '.gif'"),
    (lambda d: ["run.jsonl"], "out", "unsupported image type '(no suffix)'"),
    (lambda d: ["a.mid"], "out.png --x time", "applies to training logs, not MIDI files"),
])
def test_bad_input_is_one_line_exit_1_and_no_output(tmp_path, cli_run, write_midi, monkeypatch,
                                                    make_inputs, output, message):
    monkeypatch.chdir(tmp_path)
    write_log(tmp_path / "run.jsonl", records())
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "broken.jsonl").write_text(json.dumps(records()[0]) + "\nnot json\n")
    (tmp_path / "notes.txt").write_text("C D E")
    write_midi(tmp_path / "a.mid", [[(60, 0, 480, 0)]])
    inputs = make_inputs(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli_run("plot", *inputs, "-o", *output.split())
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temporary file


def test_other_commands_do_not_import_matplotlib():
    code = "import sys, seqgen.cli; assert 'matplotlib' not in sys.modules, 'imported'; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


def test_plot_is_in_the_help(cli_run):
    result = cli_run("--help")
    assert result.exit_code == 0 and "plot" in result.output
