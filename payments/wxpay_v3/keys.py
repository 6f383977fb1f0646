"""Loading the key material: the merchant private key, WeChat Pay's public key, platform certificates.

No I/O except the PEM loaders, which take a path the caller got from the environment (keys never
live in the repo). Reference: shared/reference/wechat-protocol.md §10.
"""
from __future__ import annotations

import os

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.exceptions import KeyLoadError
from payments.wxpay_v3._bytes import Bytesish, _b


def _read(path: str | os.PathLike[str]) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise KeyLoadError(f"cannot read {os.fspath(path)!r}: {exc.strerror}") from exc


def private_key_from_pem(pem: Bytesish) -> rsa.RSAPrivateKey:
    """Parse the merchant API private key (apiclient_key.pem, PKCS#8 or PKCS#1); RSA only."""
    try:
        key = serialization.load_pem_private_key(_b(pem), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("not an unencrypted PEM private key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyLoadError("merchant API key must be RSA (SHA256withRSA)")
    return key


def public_key_from_pem(pem: Bytesish) -> rsa.RSAPublicKey:
    """Parse a WeChat Pay public key (pub_key.pem, SubjectPublicKeyInfo); RSA only."""
    try:
        key = serialization.load_pem_public_key(_b(pem))
    except (ValueError, TypeError) as exc:
        raise KeyLoadError("not a PEM public key") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyLoadError("WeChat Pay public key must be RSA")
    return key


def certificates_from_pem(pem: Bytesish) -> list[x509.Certificate]:
    """Parse one or more PEM certificates (a platform-cert bundle may hold several during rotation)."""
    try:
        certs = x509.load_pem_x509_certificates(_b(pem))
    except ValueError as exc:
        raise KeyLoadError("not a PEM certificate") from exc
    return certs


def load_private_key(path: str | os.PathLike[str]) -> rsa.RSAPrivateKey:
    """Load the merchant private key from a path the caller took from the environment."""
    return private_key_from_pem(_read(path))


def load_public_key(path: str | os.PathLike[str]) -> rsa.RSAPublicKey:
    """Load the WeChat Pay public key (public-key mode) from a path taken from the environment."""
    return public_key_from_pem(_read(path))


def load_certificates(path: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Load platform certificates from a PEM file whose path comes from the environment."""
    return certificates_from_pem(_read(path))



def certificate_serial(cert: x509.Certificate) -> str:
    """The serial as WeChat writes it in Wechatpay-Serial: uppercase hex without leading zeros."""
    return format(cert.serial_number, "X")
