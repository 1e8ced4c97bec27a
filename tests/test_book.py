from ood_utils.book import say


def test_say_displays_markdown(capsys):
    say("**42**")     # outside a notebook, IPython's display prints the object's repr
    assert "Markdown" in capsys.readouterr().out
