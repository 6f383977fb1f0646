import requests


def test_text_message_gets_help_reply_in_every_mode(app, base_url, emulator):
    openid = next(iter(emulator.shoppers))
    for mode in ("plaintext", "compatible", "safe"):
        emulator.push_mode = mode
        out = requests.post(f"{base_url}/_emulator/shopper/text", json={"openid": openid, "content": "你好"}).json()
        assert out["delivered"], out
        assert out["reply"] == "text"
