"""The library's front door for arrays and files."""
