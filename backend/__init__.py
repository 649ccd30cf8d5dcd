"""CodeMentor backend: the REST API behind the CodeMentor coding tutor."""

__version__ = "0.1.0"
