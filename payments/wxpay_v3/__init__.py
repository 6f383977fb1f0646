"""WeChat Pay API v3 protocol (being split into modules by noun; see verification.py for now)."""
from payments.wxpay_v3.verification import *  # noqa: F401,F403
