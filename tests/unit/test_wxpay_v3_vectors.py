"""WeChat Pay API v3 protocol against the PUBLISHED vectors V-PAY3-1..6 (reference §10, appendix A).

Values in the first block were extracted by a script from shared/reference/wechat-protocol.md
(the `\\n` of its messages turned into real newlines). The reference does not reproduce three
long values, so they were copied from the public test files it cites (marked below); each is
self-checking: the key reproduces V-PAY3-3, the certificate verifies V-PAY3-6 and carries serial
D7CE59D1F522D701, and the ciphertext only decrypts under GCM if every byte is right.
These are the ground truth; the round trips at the end only exercise the emulator direction.
"""
from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.exceptions import (
    DecryptFailed,
    KeyLoadError,
    MissingSignature,
    SignatureInvalid,
    SignatureProbe,
    StaleTimestamp,
    UnknownSerial,
    VerificationFailed,
)
from payments.wxpay_v3 import (
    MerchantSigner,
    PlatformCertificateStore,
    WechatPayPublicKey,
    WechatPayVerifier,
    aead_decrypt,
    aead_encrypt,
    api_v3_key,
    build_pay_sign_message,
    build_request_message,
    build_verify_message,
    certificate_serial,
    certificates_from_download,
    certificates_from_pem,
    check_fresh,
    decrypt_certificate,
    decrypt_resource,
    encrypt_resource,
    jsapi_pay_params,
    load_certificates,
    load_private_key,
    load_public_key,
    parse_authorization,
    private_key_from_pem,
    public_key_from_pem,
    sign,
    verify_signature,
)

# --- vector values extracted from the reference file (script: regex over §10) -----------------
V2_PUBLIC_KEY_PEM = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAptpm+qvIDCh/9wjU26SQ\nCK26ogYkBhDrYxnAaw2JbbBsp1oDbHKk+1r381NeBUG2HEFAuU+Fr72u5ot3yKdz\noF/FajAzQNKnm569/D3upKoi8mYBaST15Uig8j8qoUW1U217LL0jEHlSnHV3lcaD\nTXqDpTRR4Bfz9IqOgJgFZ8/oTfEomSrjrLYef81Eyxr7ZIMQXEKKEK7V4UXKS0+/\nfDsiG/cXidhzt8UbTL9vqXqxM2+IDImyO+FAc/tkBG55LmzxPto1Nq0WbnZzRM/w\nTzrd0I/8NlevxtFbphg4evlHjFNI7+GrqR87ViEwuAJJ9Je5QQjct5YJfFRWiZ5C\nMQIDAQAB\n-----END PUBLIC KEY-----\n'
V4_PUBLIC_KEY_PEM = '-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwXNI6sdlknHBnK8Fu2U6\nCwor9qY747jP8KAfeBMeveEt1TqaHkLfaSD07trZLhGpfs8/AHqjhgSMO1O10YQW\nOrrJ4hjIWPKqxbgrYMkBQc+mwdiWp4W3ByCqxBRagCveCXRWCmuJYovl9H/bsDI0\niGbpVtEOghJtfciisYSgxcLufUDTRkvwxjIBK1pCRjk33jJ5YTBWTHMRtMAOcFLN\nF6hdEYdX8SPsgHHeLZ5Lv2T/686w1xtgCHef/sd4uSfWmyzsalQdHG/e4IyYmrhx\n+O3VBoNDzE3nx23bFeV/RVNCG7cV6VhmYokJNHa/erIPkEmEFID6A5wQOXuxUkmJ\nWwIDAQAB\n-----END PUBLIC KEY-----\n'
V2_SPKI_SHA256 = '0076df9361cc1f5744359234d7df9fd43442cf369fb98826562f1d10a347ec5c'
V2_GET_MESSAGE = 'GET\n/v3/refund/domestic/refunds/123123123123\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n\n'
V2_GET_SIGNATURE = 'Lc9VXxmeonkdV8Xk9tmigQFLhl0vRWTerdmoRu01aAnYwIrD/5nsSwE1WlmZGLRlAFTNQ3QsMa0+VRDlJp1Wp5p0nO8EK68b5sJBbjouxaFciIfq1zfDWWz+jqhcMoKXI1A6dPm1AW7D4d30WsMTNzp6g23OXakIsh9LO3lUmwvTuE0BY8ncf6tNGk4wKmvXwERd/ZpoQY3MAVKz+Nakwc+2XBmzT66KcUehU5kr4IvGa/lEU5RZb/q00zP9VLdBhC/jQSX3X1UcJLCtEc4gTmib4tnmAT+bHF/e17ZAuxDNcx6rqT8gNEXqaJGG+1OflMSTU2tpyG65G4dMKdFcoA=='
V2_MCHID = '1900007291'
V2_SERIAL = '408B07E79B8269FEC3D5D3E6AB8ED163A6A380DB'
V2_POST_URL = '/v3/pay/transactions/jsapi'
V2_TIMESTAMP = '1554208460'
V2_NONCE = '593BEC0C930BF1AFEB40B4A08C8FB242'
V2_POST_BODY = '{"appid":"wxd678efh567hg6787","mchid":"1900007291","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"},"payer":{"openid":"oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}}'
V2_POST_SIGNATURE = 'jnks4dlrPw3ZX+ozVvSK39oa0t7OMBsg83BHAwd8BRdUFiVaQNTLTvci+wURgP1OQBbKYhFGvt7iqYpDSTQkp7Uq1sltaQKyncCyrA1g88m5bsKERQfPyT0ahSwKTYJ1CAn9QiJuSJRq1QsQs07eehbU/k9BCS51jTyc1Jpsi2H77HF9f/BnjXAOP3/sPObg6V5Ee4EzwLox684hhuMuIwHo7D8KFk3LIHOKDcNI4It1aCXydFWNpNK+SG86VUDe5kwoDpw4Ulqfu9z8OFDGbDs9TCxEv8iqQzbpxOlEVoOe2kalSYM5kApQb3nZcxdUtoE0liJGW3RGUNE0t4v01A=='
V2_APPID = 'wx2421b1c4370ec43b'
V2_PACKAGE = 'prepay_id=wx201410272009395522657a690389285100'
V2_PAY_MESSAGE = 'wx2421b1c4370ec43b\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\nprepay_id=wx201410272009395522657a690389285100\n'
V2_PAY_SIGN = 'mI35pfNEQV6777ke/1T+LJLQDNTm7yeoUJH+j/adPGhmCCi0PbgkvYQTRcXH0uibcLVtvFLdGLpmoYO9FV6lBBsTAjuhh5YOvQi0e2g3e0yytitiNET9FEuqM0pjnKfRW4K6LIZDdbWJv9KhZUx3DrJa5TL7OJ7VdADVivxVySIlPVKjGwuCXzuXSJes0UcILgWQUMyha5/3nYofuHtS7r+KYyMuxD+oJ9VM1Qdxk4UIG59CP5Y3wtYIFybyF3bdu1caHTRRX+DLyMXyYA/IrTmiW01c4RPjpHBX5Dk1sZyY1zVsWNsvMHr2e1NTWtBxKJ+qk5N61J7caYoepHFaxw=='
V3_SIGNATURE = 'BKyAfU4iMCuvXMXS0Wzam3V/cnxZ+JaqigPM5OhljS2iOT95OO6Fsuml2JkFANJU9K6q9bLlDhPXuoVz+pp4hAm6pHU4ld815U4jsKu1RkyaII+1CYBUYC8TK0XtJ8FwUXXz8vZHh58rrAVN1XwNyvD1vfpxrMT4SL536GLwvpUHlCqIMzoZUguLli/K8V29QiOhuH6IEqLNJn8e9b3nwNcQ7be3CzYGpDAKBfDGPCqCv8Rw5zndhlffk2FEA70G4hvMwe51qMN/RAJbknXG23bSlObuTCN7Ndj1aJGH6/L+hdwfLpUtJm4QYVazzW7DFD27EpSQEqA8bX9+8m1rLg=='
V3_CERT_SERIAL = 'D7CE59D1F522D701'
V4_WECHATPAY_TIMESTAMP = '1722850421'
V4_WECHATPAY_NONCE = 'd824f2e086d3c1df967785d13fcd22ef'
V4_WECHATPAY_SERIAL = 'PUB_KEY_ID_0000000000000024101100397200000006'
V4_REQUEST_ID = '08F5B8C2B506102C18FDDFEEA30620BE821E28EDC405-0'
V4_BODY = '{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}'
V4_MESSAGE = '1722850421\nd824f2e086d3c1df967785d13fcd22ef\n{"code_url":"weixin://wxpay/bizpayurl?pr=JyC91EIz1"}\n'
V4_SIGNATURE = 'mfI1CPqvBrgcXfgXMFjdNIhBf27ACE2YyeWsWV9ZI7T7RU0vHvbQpu9Z32ogzc+k8ZC5n3kz7h70eWKjgqNdKQF0eRp8mVKlmfzMLBVHbssB9jEZEDXThOX1XFqX7s7ymia1hoHQxQagPGzkdWxtlZPZ4ZPvr1RiqkgAu6Is8MZgXXrRoBKqjmSdrP1N7uxzJ/cjfSiis9FiLjuADoqmQ1P7p2N876YPAol7Rn0+GswwAwxldbdLrmVSjfytfSBJFqTMHn4itojgxSWWN1byuckQt8hSTEv/Lg97QoeGniYP17T80pJeQyL3b+295FPHSO2AtvCgyIbKMZ0BALilAA=='
V5_GO_KEY = 'testAPIv3Key0000'
V5_GO_NONCE = 'wCq51qZv4Yfg'
V5_GO_AAD = 'Dl56FrqWQJF1t9LtC3vEUsniZKvbqdR8'
V5_GO_CT = 'FsdXzxryWfKwvLJKf8LG/ToRPTRh8RN9wROC'
V5_GO_PLAIN = 'Hello World'
V5_GO_WRONG_KEY = 'testAPIv3Key1111'
V5_JAVA_KEY = 'a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb'
V5_JAVA_NONCE = 'uluk4a9R25RW'
V5_JAVA_AAD = 'associatedData'
V5_JAVA_PLAIN = 'message'
V5_JAVA_CT = 'ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI='
V5_CERT_AAD = 'certificate'
V5_CERT_NONCE = '14b16c03dc1b'
V5_CERT_SERIAL = '5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC'
V6_CERT_SERIAL = 'D7CE59D1F522D701'
V6_WECHATPAY_TIMESTAMP = '1624523846'
V6_WECHATPAY_NONCE = 'EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz'
V6_WECHATPAY_SERIAL = 'D7CE59D1F522D701'
V6_WECHATPAY_SIGNATURE = 'tJHIiIS9eB2hAYstmAmbbD3ZE5LiIm/Ug5tuL4fC0YOFRWIHV39UFIZXC0e9Wl6lBu6sKvkqDkzpqzBsVHyXFlbYZTOQrVdG4b6LfTnK4mikv9++ixJMd3vTf2yCqvBkh98zs3Ds5zsYQakzbcwhmw4fMJs4nPLws28H0UW9FjDR//rxELLwXvV1VEA1IBLX70xptjL8hrfUjEE8kkry6yNJTHZRU8CAc7qHli2Ng1V1qb9ARbK8A3ThmFmPQvRGrapI/jS2laKKgYUmfdEdkNO6B2Cke5e8VTxY406ArAmQ90GAihDwIcb16TQMnzCMBoutnwZKNiKRACrFmtxw2Q=='
V6_BODY = '{"id":"3119dfba-e649-5eec-ab1e-3412bc4d2e17","create_time":"2021-06-24T16:37:26+08:00","resource_type":"encrypt-resource","event_type":"PAYSCORE.USER_OPEN_SERVICE","summary":"签约成功","resource":{"original_type":"payscore","algorithm":"AEAD_AES_256_GCM","ciphertext":"YDS3lKPaC4Y52Gf3uhft5qUBlIa8b428AWTtTauHQfQrRw+X1WpiuHIDy0vo1Vd6VEq67aVyqPdDYMkRVSDaZL3iZttevRMOoPKMifozg6XPWjIZumks/GpT48lI4NizyeaqLBokNebthah3o1H76qSlO9NkDjp9bzmKLEYYH9TEklFUpsvPqOTOcgSLgh21YJXYR7dEBXFgRLiNIKRgO5JdXh1hccRUAlyVWxE54PXpnQ==","associated_data":"payscore","nonce":"Kj7QIyUiYx1q"}}'
V6_API_V3_KEY = 'testMchAPIv3Key0'
V6_PLAINTEXT = '{"mchid":"1234567890","appid":"054aa7d7a2a54ab5898df65bd96f001c","create_time":"2020-06-30T12:12:00+08:00","out_contract_code":"21640bdbd08e473e828f3206a2741c6e"}'
V6_NOW = '1624523846'

# --- copied from the public test files the reference cites (not reproduced in the reference) ---
# From wechatpay-apiv3/wechatpay-go core/auth/signers/sha256withrsa_signer_test.go (testPrivateKeyStr,
# PEM label "TESTING KEY", which the Go test rewrites to "PRIVATE KEY").
GO_TESTING_KEY_PEM = """-----BEGIN TESTING KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDZUJN33V+dSfvd
fL0Mu+39XrZNXFFMQSy1V15FpncHeV47SmV0TzTqZc7hHB0ddqAdDi8Z5k3TKqb7
6sOwYr5TcAfuR6PIPaleyE0/0KrljBum2Isa2Nyq7Dgc3ElBQ6YN4l/a+DpvKaz1
FSKmKrhLNskqokWVSlu4g8OlKlbPXQ9ibII14MZRQrrkTmHYHzfi7GXXM0thAKuR
0HNvyhTHBh4/lrYM3GaMvmWwkwvsMavnOex6+eioZHBOb1/EIZ/LzC6zuHArPpyW
3daGaZ1rtQB1vVzTyERAVVFsXXgBHvfFud3w3ShsJYk8JvMwK2RpJ5/gV0QSARcm
LDRUAlPzAgMBAAECggEBAMc7rDeUaXiWv6bMGbZ3BTXpg1FhdddnWUnYE8HfX/km
OFI7XtBHXcgYFpcjYz4D5787pcsk7ezPidAj58zqenuclmjKnUmT3pfbI5eCA2v4
C9HnbYDrmUPK1ZcADtka4D6ScDccpNYNa1g2TFHzkIrEa6H+q7S3O2fqxY/DRVtN
0JIXalBb8daaqL5QVzSmM2BMVnHy+YITJWIkP2a3pKs9C0W65JGDsnG0wVrHinHF
+cnhFZIbaPEI//DAFMc9NkrWOKVRTEgcCUxCFaHOZVNxDWZD7A2ZfJB2rK6eg//y
gEiFDR2h6mTaDowMB4YF2n2dsIO4/dCG8vPHI20jn4ECgYEA/ZGu6lEMlO0XZnam
AZGtiNgLcCfM/C2ZERZE7QTRPZH1WdK92Al9ndldsswFw4baJrJLCmghjF/iG4zi
hhBvLnOLksnZUfjdumxoHDWXo2QBWbI5QsWIE7AuTiWgWj1I7X4fCXSQf6i+M/y2
6TogQ7d0ANpZFyOkTNMn/tiJvLECgYEA22XqlamG/yfAGWery5KNH2DGlTIyd6xJ
WtJ9j3jU99lZ0bCQ5xhiBbU9ImxCi3zgTsoqLWgA/p00HhNFNoUcTl9ofc0G3zwT
D1y0ZzcnVKxGJdZ6ohW52V0hJStAigtjYAsUgjm7//FH7PiQDBDP1Wa6xSRkDQU/
aSbQxvEE8+MCgYEA3bb8krW7opyM0XL9RHH0oqsFlVO30Oit5lrqebS0oHl3Zsr2
ZGgoBlWBsEzk3UqUhTFwm/DhJLTSJ/TQPRkxnhQ5/mewNhS9C7yua7wQkzVmWN+V
YeUGTvDGDF6qDz12/vJAgSwDDRym8x4NcXD5tTw7mmNRcwIfL22SkysThIECgYAV
BgccoEoXWS/HP2/u6fQr9ZIR6eV8Ij5FPbZacTG3LlS1Cz5XZra95UgebFFUHHtC
EY1JHJY7z8SWvTH8r3Su7eWNaIAoFBGffzqqSVazfm6aYZsOvRY6BfqPHT3p/H1h
Tq6AbBffxrcltgvXnCTORjHPglU0CjSxVs7awW3AEQKBgB5WtaC8VLROM7rkfVIq
+RXqE5vtJfa3e3N7W3RqxKp4zHFAPfr82FK5CX2bppEaxY7SEZVvVInKDc5gKdG/
jWNRBmvvftZhY59PILHO2X5vO4FXh7suEjy6VIh0gsnK36mmRboYIBGsNuDHjXLe
BDa+8mDLkWu5nHEhOxy2JJZl
-----END TESTING KEY-----
"""
# From wechatpay-apiv3/wechatpay-go core/notify/notify_test.go (wechatPayCertificate).
GO_PLATFORM_CERT_PEM = """-----BEGIN CERTIFICATE-----
MIIDVzCCAj+gAwIBAgIJANfOWdH1ItcBMA0GCSqGSIb3DQEBCwUAMEIxCzAJBgNV
BAYTAlhYMRUwEwYDVQQHDAxEZWZhdWx0IENpdHkxHDAaBgNVBAoME0RlZmF1bHQg
Q29tcGFueSBMdGQwHhcNMjEwNDI3MDg1NTIzWhcNMzEwNDI1MDg1NTIzWjBCMQsw
CQYDVQQGEwJYWDEVMBMGA1UEBwwMRGVmYXVsdCBDaXR5MRwwGgYDVQQKDBNEZWZh
dWx0IENvbXBhbnkgTHRkMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA
2VCTd91fnUn73Xy9DLvt/V62TVxRTEEstVdeRaZ3B3leO0pldE806mXO4RwdHXag
HQ4vGeZN0yqm++rDsGK+U3AH7kejyD2pXshNP9Cq5YwbptiLGtjcquw4HNxJQUOm
DeJf2vg6byms9RUipiq4SzbJKqJFlUpbuIPDpSpWz10PYmyCNeDGUUK65E5h2B83
4uxl1zNLYQCrkdBzb8oUxwYeP5a2DNxmjL5lsJML7DGr5znsevnoqGRwTm9fxCGf
y8wus7hwKz6clt3Whmmda7UAdb1c08hEQFVRbF14AR73xbnd8N0obCWJPCbzMCtk
aSef4FdEEgEXJiw0VAJT8wIDAQABo1AwTjAdBgNVHQ4EFgQUT1c7nd/SUO76HSoZ
umNUJv1R5PwwHwYDVR0jBBgwFoAUT1c7nd/SUO76HSoZumNUJv1R5PwwDAYDVR0T
BAUwAwEB/zANBgkqhkiG9w0BAQsFAAOCAQEAfTjxKRQMzNB/U6ZoCUS+BSNfa2Oh
0plMN6ZuzwiVVZwg1jywvv5yv04koS7Pd4i9E4gt9ZBUQXlpq+A3oOCEEHNRR6b2
kyazGRM7s0OP5X21WrbpSmKmU6K7hkfx30yYs08LVs/Q8DIhvaj1FCFeJzUCzYn/
fHMq4tsbKO0dKAeydPM/nrUZBmaYQVKMVOORGLFjFKVO7JV6Kq/R86ouhjEPgJOe
2xulNBUcjicqtZlBdEh/PWCYP2SpGVDclKm8jeo175T3EVAkdKzzmfpxtMmnMlmq
cTJOU9TxuGvNASMtjj7pYIerTx+xgZDXEVBWFW9PjJ0TV06tCRsgSHItgg==
-----END CERTIFICATE-----
"""
# From wechatpay-apiv3/wechatpay-java .../core/model/TestConfig.java (DOWNLOAD_CERTIFICATE_RESPONSE).
JAVA_CERT_CIPHERTEXT = (
    "Mr/AxbvY+WL9hKlD5nIa03LOMPpn5f+CWeNxE4ujl0f5gXZ9XLJ9CldkArCOTsbU62XgKnTc3YvRMZQ7wCmE2fzwmAenAySTYsPms72JhggPWfdqVxri9YD5wBYKn8Ck0Fc5JIiVw9WlN2oxHBz83mRVsjoTGC5+cX1CdYqKuZ8pkvi0aCJIq07ZC8MHoTowUz+4jYJy9XeKqip83Z7BmUYxsePpNM+HtihBqTJIUYXJfX7Col5X0ACsApRoU9l6swfW/kzvqNpDJavhDBGasLrr5822+Fk5nVkcTi53f8Wbue7ODWjJxj1yhRYcxFCvXLtpYNB+Qa1aXtrBSdBdBI2p7o+6Imn+auHLBCzkrZqF/yd+d4vTn4tqHPLUj89XcHsMf96uBo3T/HQV8LEDeIO+6YvOK9FrIDYsvp+imN4n/mnF7eJKo9mpN/QqWJiawrFpAmMMxFKBjIdpgMnVUl3Z11RcWKyfOJ3kcmItTWcnZFNyDgR9cS0aU6QPlefa3uUW89uzBuHjcFdDl43yU3LE4qZnHLDcDgx4qt0OFCLiy51GXtEpyYs5k99YJBvKK+RyIs4Yc1/smBmClQUhxW+8bsPNOcXfDvH2yX4YzESoO4TV0RqiCgnsSd4zIFyJPiMKIGzVHiw6Kg0eGCmB4mGHEEZCQ0eN3SSPO0QVjjtBYfgXDZfVHSaAB8PjWBVNFimoViZZQrwT6Ygo0LU0Dd8+F5aHFYr4OPHPslr3hrgutEYXDTv1vTA6ABJGqknJ9Y2vtyWpy7aIwxc0kQq/1ezjs+RMVL/LRpGDnbx1/CGPDjZhYgZypKa55+PDhoaQxqkF3xCLz2DGoNHZYmFqxzAOsAK0vJZw4VcAk6ssbA6YIaMuiemEpxfLC9ZiXtRqsX9s+GWjjtA8JywOFMO+NKZm9BH/E5YNg2DDD3sHG9Mciwn7yJ6sdf8h2lAWlEExAOeiBNyshOHAQ0/S+x1ncWNiqY+Uh5n0rtonvePV2MsxVlEWR3AVHn1abcEWkzivd+G5kg7LYO0goqzGClcQfnFfZdO6KwcMXsBCnm9A1Bl4+k5LLokTIYH5/36SRIZ9j0CHGD77BQLE7x8AlNsoFS2m263tLLq78TFqvZUTIZIQcVIl+NInscS3xQbA38qqFqutCWIwoF1azuJ7woiJyMvnS3xzIpNzP+rzJ8VDXxjLjpEUBOC9WDs74+QMtsAdmh6g0KDclHEk8WJ4P2bnso4z3VCGoDT5X/0bS1C+jMZMKaOCNB21FZ08qgUHmKeDeg8ylENu+mh2Y/AaEDSGkGBHIfFbhMYO3uRxhk9hldiHEnHgdkXiVAAUWk/IhtmGijibO/L76vB74Xpes973uK+2iFKgNBk8qTLLZZnuWbcMQuA6VsFULRb/C+q9B21YuAWPMzvgBwr4EX2m/OpF5w8Q0HL7v1H5H0mIGJbrjnklUPoBYrw30W3uk7yF0KE6sfMukafFx0S9rBOL0RykGDPwC0lHSNySkXDeM5XvDJ+dtHK+RDwhJR+azfrWAHGMtZcQ+YVamjWVmHxXM03j3GeCXgqae1upwHzkPL5OwojcQ5MQi3Kv/1xtwY0cRN/yeZTOsXfujtqhkJj/Vltby4lnW4SCj4LjWQF19BY6zhzF4yybBA8bhhtoNP/zx8QkhHAkIROkK2ZVgfocCAPvfQ+vSrsIBO+L5cmg6mzFn4g84lsHscgXnszIlzUrzx/4Tam0uwuS9J1gddZ0I0QUt9SJzfsoBCTU0OgNMUtXKS5HvgXe7abexMtFH5eulOsAuFZkQ5LYJa/m4yHFInXzL/t3hjdTi2NmxUufvYzwIyffRTu5vS9vjscARD9lUQDHFQ/xgWe1i8EkRlrSfjlXt00+4//h2bcJKyTBT3IXwvKNsuY29V9/vU3HkvWKZ99zpSlmcZRuBa1BHbyPEvc0NlqIIoKidxqUvOR64MzudHhAjgWFP+IXojfhS3Gj9OJhBL7s"
)

# --- fixtures --------------------------------------------------------------------------------


def _go_private_key() -> rsa.RSAPrivateKey:
    # The Go test stores the key under the label "TESTING KEY" and relabels it before parsing.
    return private_key_from_pem(GO_TESTING_KEY_PEM.replace("TESTING KEY", "PRIVATE KEY"))


def _v6_headers(**override: str) -> dict[str, str]:
    headers = {
        "Wechatpay-Timestamp": V6_WECHATPAY_TIMESTAMP,
        "Wechatpay-Nonce": V6_WECHATPAY_NONCE,
        "Wechatpay-Serial": V6_WECHATPAY_SERIAL,
        "Wechatpay-Signature": V6_WECHATPAY_SIGNATURE,
    }
    headers.update(override)
    return headers


def _v4_headers(**override: str) -> dict[str, str]:
    headers = {
        "Wechatpay-Timestamp": V4_WECHATPAY_TIMESTAMP,
        "Wechatpay-Nonce": V4_WECHATPAY_NONCE,
        "Wechatpay-Serial": V4_WECHATPAY_SERIAL,
        "Wechatpay-Signature": V4_SIGNATURE,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Request-ID": V4_REQUEST_ID,
    }
    headers.update(override)
    return headers


def _v4_public_key() -> WechatPayPublicKey:
    return WechatPayPublicKey(V4_WECHATPAY_SERIAL, public_key_from_pem(V4_PUBLIC_KEY_PEM))


def _v6_store() -> PlatformCertificateStore:
    return PlatformCertificateStore([GO_PLATFORM_CERT_PEM])


# --- V-PAY3-1: signing-string format ---------------------------------------------------------


def test_v_pay3_1_get_message_empty_body():
    assert (
        build_request_message("GET", "/v3/certificates", 1624523846, "A1B2C3D4E5F6G7", b"")
        == b"GET\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\n\n"
    )


def test_v_pay3_1_post_body_keeps_its_own_newline():
    assert (
        build_request_message("POST", "/v3/certificates", "1624523846", "A1B2C3D4E5F6G7", "Hello World!\n")
        == b"POST\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\nHello World!\n\n"
    )


def test_v_pay3_1_authorization_header_format():
    signer = MerchantSigner("1234567890", "0123456789ABC", _go_private_key())
    header = signer.authorization("GET", "/v3/certificates", timestamp=1624523846, nonce="A1B2C3D4E5F6G7")
    assert header.startswith('WECHATPAY2-SHA256-RSA2048 mchid="1234567890",nonce_str="A1B2C3D4E5F6G7",signature="')
    assert header.endswith('",timestamp="1624523846",serial_no="0123456789ABC"')
    items = parse_authorization(header)
    message = b"GET\n/v3/certificates\n1624523846\nA1B2C3D4E5F6G7\n\n"
    verify_signature(_go_private_key().public_key(), message, items["signature"])


def test_url_is_path_and_query_without_scheme_or_host():
    message = build_request_message(
        "get", "https://api.mch.weixin.qq.com/v3/pay/transactions/out-trade-no/123?mchid=1230000109", 1, "n"
    )
    assert message == b"GET\n/v3/pay/transactions/out-trade-no/123?mchid=1230000109\n1\nn\n\n"


# --- V-PAY3-2: official examples, checked with the public half of the official test key -----


def test_v_pay3_2_test_key_is_the_published_one():
    key = public_key_from_pem(V2_PUBLIC_KEY_PEM)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert hashlib.sha256(der).hexdigest() == V2_SPKI_SHA256
    assert key.key_size == 2048 and key.public_numbers().e == 65537


def test_v_pay3_2_get_signature():
    message = build_request_message(
        "GET", "/v3/refund/domestic/refunds/123123123123", V2_TIMESTAMP, V2_NONCE, b""
    )
    assert message == V2_GET_MESSAGE.encode()
    verify_signature(public_key_from_pem(V2_PUBLIC_KEY_PEM), message, V2_GET_SIGNATURE)


def test_v_pay3_2_post_signature_over_utf8_body():
    message = build_request_message("POST", V2_POST_URL, V2_TIMESTAMP, V2_NONCE, V2_POST_BODY)
    verify_signature(public_key_from_pem(V2_PUBLIC_KEY_PEM), message, V2_POST_SIGNATURE)


def test_v_pay3_2_jsapi_pay_sign():
    prepay_id = V2_PACKAGE.removeprefix("prepay_id=")
    message = build_pay_sign_message(V2_APPID, V2_TIMESTAMP, V2_NONCE, V2_PACKAGE)
    assert message == V2_PAY_MESSAGE.encode()
    verify_signature(public_key_from_pem(V2_PUBLIC_KEY_PEM), message, V2_PAY_SIGN)
    # The parameter dict over the same inputs signs exactly this message.
    key = _go_private_key()
    params = jsapi_pay_params(key, V2_APPID, prepay_id, timestamp=V2_TIMESTAMP, nonce=V2_NONCE)
    assert {k: v for k, v in params.items() if k != "paySign"} == {
        "appId": V2_APPID,
        "timeStamp": V2_TIMESTAMP,
        "nonceStr": V2_NONCE,
        "package": V2_PACKAGE,
        "signType": "RSA",
    }
    assert params["paySign"] == sign(key, V2_PAY_MESSAGE)


def test_v_pay3_2_tampered_body_fails():
    message = build_request_message("POST", V2_POST_URL, V2_TIMESTAMP, V2_NONCE, V2_POST_BODY.replace("100", "1"))
    with pytest.raises(SignatureInvalid):
        verify_signature(public_key_from_pem(V2_PUBLIC_KEY_PEM), message, V2_POST_SIGNATURE)


# --- V-PAY3-3: the wechatpay-go signer --------------------------------------------------------


def test_v_pay3_3_signer_reproduces_go_signature():
    assert sign(_go_private_key(), "source") == V3_SIGNATURE


def test_v_pay3_3_key_pair_matches_v6_platform_certificate():
    (cert,) = certificates_from_pem(GO_PLATFORM_CERT_PEM)
    assert certificate_serial(cert) == V3_CERT_SERIAL == V6_CERT_SERIAL
    assert cert.public_key().public_numbers() == _go_private_key().public_key().public_numbers()


# --- V-PAY3-4: WeChat Pay public-key mode -----------------------------------------------------


def test_v_pay3_4_message():
    assert build_verify_message(V4_WECHATPAY_TIMESTAMP, V4_WECHATPAY_NONCE, V4_BODY) == V4_MESSAGE.encode()


def test_v_pay3_4_verifies_in_public_key_mode():
    verifier = WechatPayVerifier(public_key=_v4_public_key())
    result = verifier.verify(_v4_headers(), V4_BODY.encode(), now=int(V4_WECHATPAY_TIMESTAMP) + 10)
    assert result.serial == V4_WECHATPAY_SERIAL and result.timestamp == 1722850421


def test_v_pay3_4_header_names_are_case_insensitive():
    headers = {k.lower(): v for k, v in _v4_headers().items()}
    WechatPayVerifier(public_key=_v4_public_key()).verify(headers, V4_BODY, now=1722850421)


def test_v_pay3_4_tampered_body_fails():
    verifier = WechatPayVerifier(public_key=_v4_public_key())
    with pytest.raises(SignatureInvalid):
        verifier.verify(_v4_headers(), V4_BODY.replace("JyC91EIz1", "JyC91EIz2"), now=1722850421)


def test_v_pay3_4_other_pub_key_id_is_unknown():
    verifier = WechatPayVerifier(public_key=_v4_public_key())
    other = "PUB_KEY_ID_0000000000000024101100397200000007"
    with pytest.raises(UnknownSerial) as info:
        verifier.verify(_v4_headers(**{"Wechatpay-Serial": other}), V4_BODY, now=1722850421)
    assert info.value.serial == other


def test_v_pay3_4_public_key_id_must_look_like_one():
    with pytest.raises(KeyLoadError):
        WechatPayPublicKey("D7CE59D1F522D701", public_key_from_pem(V4_PUBLIC_KEY_PEM))


# --- transition: platform certificates and public key both configured -------------------------


def test_both_modes_configured_choose_by_serial():
    verifier = WechatPayVerifier(_v6_store(), _v4_public_key())
    verifier.verify(_v4_headers(), V4_BODY, now=1722850421)
    verifier.verify(_v6_headers(), V6_BODY, now=int(V6_NOW))


def test_certificate_serial_without_store_is_unknown():
    with pytest.raises(UnknownSerial):
        WechatPayVerifier(public_key=_v4_public_key()).verify(_v6_headers(), V6_BODY, now=int(V6_NOW))


def test_pub_key_id_without_public_key_is_unknown():
    with pytest.raises(UnknownSerial):
        WechatPayVerifier(_v6_store()).verify(_v4_headers(), V4_BODY, now=1722850421)


def test_signature_of_one_mode_does_not_verify_under_the_other():
    # V-PAY3-4's signature presented with the certificate's serial: right serial, wrong key.
    verifier = WechatPayVerifier(_v6_store(), _v4_public_key())
    headers = _v4_headers(**{"Wechatpay-Serial": V6_CERT_SERIAL})
    with pytest.raises(SignatureInvalid):
        verifier.verify(headers, V4_BODY, now=1722850421)


def test_verifier_needs_at_least_one_key_source():
    with pytest.raises(ValueError):
        WechatPayVerifier()


# --- V-PAY3-5: AES-GCM units and the platform-certificate download -----------------------------


def test_v_pay3_5_go_decrypt():
    assert aead_decrypt(V5_GO_KEY, V5_GO_NONCE, V5_GO_AAD, V5_GO_CT) == V5_GO_PLAIN.encode()


def test_v_pay3_5_go_wrong_key_fails():
    with pytest.raises(DecryptFailed):
        aead_decrypt(V5_GO_WRONG_KEY, V5_GO_NONCE, V5_GO_AAD, V5_GO_CT)


def test_v_pay3_5_java_encrypt_and_decrypt():
    assert aead_encrypt(V5_JAVA_KEY, V5_JAVA_NONCE, V5_JAVA_AAD, V5_JAVA_PLAIN) == V5_JAVA_CT
    assert aead_decrypt(V5_JAVA_KEY, V5_JAVA_NONCE, V5_JAVA_AAD, V5_JAVA_CT) == V5_JAVA_PLAIN.encode()


@pytest.mark.parametrize(
    "nonce, aad, ciphertext",
    [
        (V5_JAVA_NONCE, "associatedDatA", V5_JAVA_CT),  # bad AAD
        ("uluk4a9R25RX", V5_JAVA_AAD, V5_JAVA_CT),  # bad nonce
        (V5_JAVA_NONCE, V5_JAVA_AAD, "bm90IGEgY2lwaGVydGV4dCBhdCBhbGw="),  # junk ciphertext
        (V5_JAVA_NONCE, V5_JAVA_AAD, "not base64 !!"),  # not Base64
        (V5_JAVA_NONCE, V5_JAVA_AAD, "ulwSiIajGg=="),  # shorter than a tag
    ],
)
def test_v_pay3_5_java_bad_inputs_fail(nonce, aad, ciphertext):
    with pytest.raises(DecryptFailed):
        aead_decrypt(V5_JAVA_KEY, nonce, aad, ciphertext)


def test_v_pay3_5_tampered_tag_fails():
    import base64

    raw = bytearray(base64.b64decode(V5_JAVA_CT))
    raw[-1] ^= 0x01
    with pytest.raises(DecryptFailed):
        aead_decrypt(V5_JAVA_KEY, V5_JAVA_NONCE, V5_JAVA_AAD, base64.b64encode(bytes(raw)).decode())


def _v5_encrypt_certificate(**override: str) -> dict[str, str]:
    entry = {
        "algorithm": "AEAD_AES_256_GCM",
        "associated_data": V5_CERT_AAD,
        "ciphertext": JAVA_CERT_CIPHERTEXT,
        "nonce": V5_CERT_NONCE,
    }
    entry.update(override)
    return entry


def test_v_pay3_5_platform_certificate_download():
    cert = decrypt_certificate(V5_JAVA_KEY, _v5_encrypt_certificate())
    assert certificate_serial(cert) == V5_CERT_SERIAL
    assert cert.not_valid_before_utc.isoformat() == "2023-09-19T15:15:58+00:00"  # 23:15:58+08:00
    assert cert.not_valid_after_utc.isoformat() == "2028-09-17T15:15:58+00:00"
    response = {
        "data": [
            {
                "effective_time": "2023-09-19T23:15:58+08:00",
                "encrypt_certificate": _v5_encrypt_certificate(),
                "expire_time": "2028-09-17T23:15:58+08:00",
                "serial_no": V5_CERT_SERIAL,
            }
        ]
    }
    (downloaded,) = certificates_from_download(V5_JAVA_KEY, response)
    store = PlatformCertificateStore()
    store.add(downloaded)
    assert store.get(V5_CERT_SERIAL.lower()) == downloaded


def test_v_pay3_5_certificate_needs_its_associated_data():
    with pytest.raises(DecryptFailed):
        decrypt_certificate(V5_JAVA_KEY, _v5_encrypt_certificate(associated_data="transaction"))


def test_v_pay3_5_declared_serial_must_match():
    response = {"data": [{"encrypt_certificate": _v5_encrypt_certificate(), "serial_no": V6_CERT_SERIAL}]}
    with pytest.raises(DecryptFailed):
        certificates_from_download(V5_JAVA_KEY, response)


# --- V-PAY3-6: end-to-end callback ------------------------------------------------------------


def test_v_pay3_6_verify_then_decrypt():
    verifier = WechatPayVerifier(_v6_store())
    verified = verifier.verify(_v6_headers(), V6_BODY.encode("utf-8"), now=int(V6_NOW))
    assert verified.serial == V6_CERT_SERIAL
    notification = json.loads(V6_BODY)
    assert decrypt_resource(V6_API_V3_KEY, notification["resource"]) == V6_PLAINTEXT.encode()


def test_v_pay3_6_tampered_body_fails():
    body = V6_BODY.replace("签约成功", "支付成功")
    with pytest.raises(SignatureInvalid):
        WechatPayVerifier(_v6_store()).verify(_v6_headers(), body, now=int(V6_NOW))


def test_v_pay3_6_body_must_be_the_raw_bytes():
    reserialised = json.dumps(json.loads(V6_BODY), ensure_ascii=False)  # adds spaces
    with pytest.raises(SignatureInvalid):
        WechatPayVerifier(_v6_store()).verify(_v6_headers(), reserialised, now=int(V6_NOW))


def test_v_pay3_6_wrong_serial_is_unknown():
    with pytest.raises(UnknownSerial):
        WechatPayVerifier(_v6_store()).verify(
            _v6_headers(**{"Wechatpay-Serial": "5DEA10EF55877E3CF6C33255C2E7DEFFF7E427EC"}),
            V6_BODY,
            now=int(V6_NOW),
        )


@pytest.mark.parametrize("offset", [301, -301, 10_000])
def test_v_pay3_6_stale_timestamp_refused(offset):
    with pytest.raises(StaleTimestamp):
        WechatPayVerifier(_v6_store()).verify(_v6_headers(), V6_BODY, now=int(V6_NOW) + offset)


@pytest.mark.parametrize("offset", [300, -300, 0])
def test_v_pay3_6_within_window_accepted(offset):
    WechatPayVerifier(_v6_store()).verify(_v6_headers(), V6_BODY, now=int(V6_NOW) + offset)


def test_non_numeric_timestamp_refused():
    with pytest.raises(StaleTimestamp):
        check_fresh("yesterday", now=0)


def test_v_pay3_6_probe_signature_rejected_before_anything_else():
    probe = "WECHATPAY/SIGNTEST/" + V6_WECHATPAY_SIGNATURE
    with pytest.raises(SignatureProbe):
        WechatPayVerifier(_v6_store()).verify(_v6_headers(**{"Wechatpay-Signature": probe}), V6_BODY, now=int(V6_NOW))
    # Even with an unknown serial and a stale clock it is reported as a probe, and it is a
    # verification failure, never a pass.
    with pytest.raises(SignatureProbe) as info:
        WechatPayVerifier(_v6_store()).verify(
            _v6_headers(**{"Wechatpay-Signature": "WECHATPAY/SIGNTEST/abc", "Wechatpay-Serial": "00"}), V6_BODY
        )
    assert isinstance(info.value, VerificationFailed)


@pytest.mark.parametrize("missing", ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Signature", "Wechatpay-Serial"])
def test_unsigned_response_is_forged(missing):
    headers = _v6_headers()
    del headers[missing]
    with pytest.raises(MissingSignature):
        WechatPayVerifier(_v6_store()).verify(headers, V6_BODY, now=int(V6_NOW))


def test_unsupported_signature_type_refused():
    with pytest.raises(SignatureInvalid):
        WechatPayVerifier(_v6_store()).verify(
            _v6_headers(**{"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"}), V6_BODY, now=int(V6_NOW)
        )


def test_non_base64_signature_refused():
    with pytest.raises(SignatureInvalid):
        WechatPayVerifier(_v6_store()).verify(_v6_headers(**{"Wechatpay-Signature": "%%%"}), V6_BODY, now=int(V6_NOW))


def test_v_pay3_6_tampered_resource_fails():
    resource = json.loads(V6_BODY)["resource"]
    with pytest.raises(DecryptFailed):
        decrypt_resource(V6_API_V3_KEY, {**resource, "associated_data": "transaction"})
    with pytest.raises(DecryptFailed):
        decrypt_resource(V6_API_V3_KEY, {**resource, "nonce": "Kj7QIyUiYx1r"})
    with pytest.raises(DecryptFailed):
        decrypt_resource(V6_API_V3_KEY, {**resource, "algorithm": "AEAD_AES_128_GCM"})
    with pytest.raises(DecryptFailed):
        decrypt_resource("testMchAPIv3Key1", resource)


# --- keys from files (paths come from the environment in production) -------------------------


def test_loaders_read_paths(tmp_path):
    key_path = tmp_path / "apiclient_key.pem"
    key_path.write_text(GO_TESTING_KEY_PEM.replace("TESTING KEY", "PRIVATE KEY"))
    pub_path = tmp_path / "pub_key.pem"
    pub_path.write_text(V4_PUBLIC_KEY_PEM)
    cert_path = tmp_path / "wechatpay_platform.pem"
    cert_path.write_text(GO_PLATFORM_CERT_PEM)
    assert sign(load_private_key(key_path), "source") == V3_SIGNATURE
    verify_signature(load_public_key(pub_path), V4_MESSAGE, V4_SIGNATURE)
    assert [certificate_serial(c) for c in load_certificates(str(cert_path))] == [V6_CERT_SERIAL]
    with pytest.raises(KeyLoadError):
        load_private_key(tmp_path / "absent.pem")
    with pytest.raises(KeyLoadError):
        load_private_key(pub_path)


def test_api_v3_key_must_be_32_bytes():
    assert api_v3_key(V5_JAVA_KEY) == V5_JAVA_KEY.encode()
    with pytest.raises(KeyLoadError):
        api_v3_key(V6_API_V3_KEY)  # the Go vectors' 16-byte key is AES-128, not a real APIv3 key


# --- emulator-style round trip with a fresh key (not ground truth) -----------------------------


def test_round_trip_with_fresh_key():
    merchant = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    platform = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Merchant -> WeChat: the emulator checks the Authorization header.
    body = '{"mchid":"1900000001","amount":{"total":1,"currency":"CNY"}}'
    header = MerchantSigner("1900000001", "ABC123", merchant).authorization(
        "POST", "/v3/pay/transactions/jsapi", body, timestamp=1700000000, nonce="N0NCE"
    )
    items = parse_authorization(header)
    verify_signature(
        merchant.public_key(),
        build_request_message("POST", "/v3/pay/transactions/jsapi", items["timestamp"], items["nonce_str"], body),
        items["signature"],
    )
    # WeChat -> merchant: an emulated notification in public-key mode.
    key = api_v3_key("0123456789abcdef0123456789abcdef")
    plaintext = json.dumps({"out_trade_no": "T1", "trade_state": "SUCCESS"}).encode()
    notify_body = json.dumps(
        {"id": "EV-1", "resource": encrypt_resource(key, plaintext, associated_data="transaction")}
    )
    signature = sign(platform, build_verify_message(1700000000, "abc", notify_body))
    verifier = WechatPayVerifier(public_key=WechatPayPublicKey("PUB_KEY_ID_0114TEST", platform.public_key()))
    headers = {
        "Wechatpay-Timestamp": "1700000000",
        "Wechatpay-Nonce": "abc",
        "Wechatpay-Serial": "PUB_KEY_ID_0114TEST",
        "Wechatpay-Signature": signature,
    }
    verifier.verify(headers, notify_body, now=1700000100)
    assert decrypt_resource(key, json.loads(notify_body)["resource"]) == plaintext
    params = jsapi_pay_params(merchant, "wx0000000000000001", "wx26112221580621e9b071c00d9e093b0000")
    verify_signature(
        merchant.public_key(),
        build_pay_sign_message(params["appId"], params["timeStamp"], params["nonceStr"], params["package"]),
        params["paySign"],
    )


# --- certificate store details -----------------------------------------------------------------


@pytest.mark.parametrize("serial", ["0xD7CE59D1F522D701", "D7CE_59D1F522D701", " D7CE59D1F522D701", ""])
def test_store_refuses_serials_that_are_not_plain_hex(serial):
    with pytest.raises(UnknownSerial):
        _v6_store().get(serial)


def test_store_serial_is_case_insensitive():
    assert certificate_serial(_v6_store().get(V6_CERT_SERIAL.lower())) == V6_CERT_SERIAL


def test_expired_platform_certificate_counts_as_unknown():
    # The V-PAY3-6 certificate is valid 2021-04-27 .. 2031-04-25; sign a fresh message in 2032.
    now = 1956528000  # 2032-01-01T00:00:00Z
    body = V6_BODY
    headers = _v6_headers(
        **{
            "Wechatpay-Timestamp": str(now),
            "Wechatpay-Signature": sign(_go_private_key(), build_verify_message(now, V6_WECHATPAY_NONCE, body)),
        }
    )
    with pytest.raises(UnknownSerial):
        WechatPayVerifier(_v6_store()).verify(headers, body, now=now)
    assert _v6_store().serials() == [V6_CERT_SERIAL]
    assert len(_v6_store()) == 1
