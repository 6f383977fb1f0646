"""Member identity: who a shopper is across the OA, the mini-program and the member card."""
