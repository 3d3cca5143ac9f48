"""The benchmark command runs end to end in smoke mode (no timing assertions: timings are noisy)."""

from autoenc_helpers.benchmark import TABLE_HEADER, main


def test_benchmark_smoke_writes_table(tmp_path):
    out = tmp_path / "t.md"
    rows = main(["--smoke", "--out", str(out)])

    assert out.is_file()
    text = out.read_text(encoding="utf-8")
    assert TABLE_HEADER in text
    assert "6,000" in text                      # the table says how many images it used

    assert [row["way"] for row in rows] == ["a", "b"]
    for row in rows:
        assert row["images"] == 6_000
        assert row["seconds"] > 0
        assert all(s > 0 for s in row["seconds_all"])
