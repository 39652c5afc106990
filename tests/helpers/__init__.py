"""Helpers the tests share: repository paths and official checksums, small factories, the CLI
runner, synthetic gulp data, checkpoint fixtures, the official scripts' reference computations,
and the bad-input checks."""
