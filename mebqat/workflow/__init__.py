"""What the Snakemake workflow needs from the library: the job matrix."""
