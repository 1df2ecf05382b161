"""`python -m classroom …`: the administrator CLI."""

from classroom.cli import main

main()
