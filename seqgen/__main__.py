from seqgen.cli import cli

cli(prog_name="seqgen")
