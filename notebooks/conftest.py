"""pytest settings for the nbval run of the notebooks (``pytest --nbval-lax notebooks``).

The Colab install cell is marked for nbval both ways, with the ``# NBVAL_SKIP`` comment (visible
to readers) and the ``nbval-skip`` tag (visible to tools). nbval warns that the two overlap, though
they say the same thing; that warning is silenced here.
"""


def pytest_configure(config):
    config.addinivalue_line("filterwarnings",
                            "ignore:Overlapping options from comments and metadata:UserWarning")
