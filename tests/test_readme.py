from pathlib import Path

from mdpo.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_flag_reference_matches_the_code(capsys):
    main(["flags"])
    table = capsys.readouterr().out.strip()
    text = README.read_text()
    documented = text.split("<!-- flags:begin -->")[1].split("<!-- flags:end -->")[0].strip()
    assert documented == table, "README's flag table is stale: regenerate it with `mdpo flags`"
