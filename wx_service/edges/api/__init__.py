"""JSON APIs for the mini-program and H5 pages."""
