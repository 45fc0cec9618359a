#!/usr/bin/env python3
"""An independent implementation of the SOPS YAML + age format, for n3x's tests.

It follows the sops sources (getsops/sops: aes/cipher.go, sops.go, age/keysource.go,
stores/yaml/store.go), not n3x's Rust code, and uses other crypto implementations: the
`cryptography` package (AES-256-GCM with a 32-byte nonce) and the `age` CLI (the data key).

    sops_reference.py encrypt LAYOUT RECIPIENT_FILE... > file.enc.yaml   (JSON of the plaintext on fd 3)
    sops_reference.py decrypt IDENTITY_FILE < file.enc.yaml             (JSON of the plaintext on stdout)

LAYOUT is `3.8` (sops 3.8/3.9: empty kms/pgp lists, `recipient` before `enc`) or `3.13`
(metadata keys sorted, `enc` before `recipient`). Each RECIPIENT_FILE holds one recipient
(`age1...` or an `ssh-ed25519 ...` line), passed to `age -R`. The data key goes to `age` on
standard input, never on its command line.

Exit status 3 means the `cryptography` package is missing (the Rust tests then skip).
"""

import base64
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # pragma: no cover
    sys.stderr.write("SKIPPED: python3 package `cryptography` is not installed (pip install cryptography)\n")
    sys.exit(3)


def b64(b):
    return base64.b64encode(b).decode()


def enc_value(key, plaintext, aad, kind):
    """aes/cipher.go Encrypt: 32-byte IV, tag = last 16 bytes of the sealed output."""
    iv = os.urandom(32)
    sealed = AESGCM(key).encrypt(iv, plaintext, aad.encode())
    data, tag = sealed[:-16], sealed[-16:]
    return "ENC[AES256_GCM,data:%s,iv:%s,tag:%s,type:%s]" % (b64(data), b64(iv), b64(tag), kind)


def dec_value(key, value, aad):
    m = re.match(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]", value)
    if not m:
        raise ValueError("not an ENC value")
    data, iv, tag = (base64.b64decode(m.group(i), validate=True) for i in (1, 2, 3))
    return AESGCM(key).decrypt(iv, data + tag, aad.encode()), m.group(4)


def to_bytes(v):
    """sops ToBytes: what the MAC hashes."""
    if isinstance(v, bool):
        return b"True" if v else b"False"
    if isinstance(v, int):
        return str(v).encode()
    if isinstance(v, float):
        return repr(v).encode()  # equal to Go's FormatFloat(v, 'f', -1, 64) for the values used here
    return v.encode()


def type_of(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return "str"


# The plaintext: nested maps, a list of scalars, a list of maps, all scalar types, an
# `_unencrypted` subtree, an empty string and a null. Keys in document order.
TREE = [
    ("k3s-token", "K10" + "ab" * 32 + "::server:" + "s3cr3t-server-password"),
    ("db", [
        ("user", "admin"),
        ("password", "hunter2-correct-horse"),
        ("port", 5432),
        ("ratio", 3.5),
        ("enabled", True),
        ("deep", [("deeper", [("value", "nested-secret")])]),
    ]),
    ("list", ["first-item", "second-item"]),
    ("maps", [[("k", "list-map-value"), ("n", 7)]]),
    ("note_unencrypted", "visible"),
    ("config_unencrypted", [("port", 8080), ("debug", False)]),
    ("empty", ""),
    ("nothing", None),
]


def emit(node, key, path, indent, out, encrypted):
    """yaml.v3 style, indent 4. Returns nothing; appends lines to out."""
    pad = " " * indent
    if isinstance(node, list) and node and isinstance(node[0], tuple) or node == []:
        out.append("%s%s:" % (pad, key))
        for k, v in node:
            emit(v, k, path + [k], indent + 4, out, encrypted and not k.endswith("_unencrypted"))
        return
    if isinstance(node, list):
        out.append("%s%s:" % (pad, key))
        for item in node:  # walkSlice: list items keep the parent's path
            if isinstance(item, list):
                first = True
                for k, v in item:
                    lines = []
                    emit(v, k, path + [k], 0, lines, encrypted and not k.endswith("_unencrypted"))
                    prefix = pad + "    - " if first else pad + "      "
                    out.append(prefix + lines[0])
                    out.extend(pad + "      " + l for l in lines[1:])
                    first = False
            else:
                out.append("%s    - %s" % (pad, scalar(item, path, encrypted)))
        return
    out.append("%s%s: %s" % (pad, key, scalar(node, path, encrypted)))


KEY = None


def scalar(v, path, encrypted):
    if v is None:
        return "null"
    if not encrypted:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return v if v else '""'
        return str(v)
    if v == "":
        return '""'  # sops does not encrypt empty strings
    return enc_value(KEY, to_bytes(v), ":".join(path) + ":", type_of(v))


def leaves(node, encrypted):
    """Every non-null leaf in document order, for the MAC."""
    if isinstance(node, list) and node and isinstance(node[0], tuple):
        for k, v in node:
            yield from leaves(v, encrypted)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, list):
                for k, v in item:
                    yield from leaves(v, encrypted)
            else:
                yield item
    elif node is not None:
        yield node


def plain_json(node):
    if isinstance(node, list) and node and isinstance(node[0], tuple):
        return {k: plain_json(v) for k, v in node}
    if isinstance(node, list):
        return [plain_json(i) for i in node]
    return node


def age_encrypt(recipient_file, data):
    return subprocess.run(["age", "-e", "-a", "-R", recipient_file], input=data, capture_output=True, check=True).stdout.decode()


def encrypt(layout, recipient_files):
    global KEY
    KEY = os.urandom(32)
    mac = hashlib.sha512()
    for v in leaves(TREE, True):
        mac.update(to_bytes(v))
    lines = []
    # A comment, as sops writes it when comments are encrypted (path "" -> AAD ":" ... here
    # the top-level comment's branch path is empty, so the AAD is ":"). The MAC skips it.
    lines.append("#" + enc_value(KEY, b" a comment", ":", "comment"))
    for k, v in TREE:
        emit(v, k, [k], 0, lines, not k.endswith("_unencrypted"))
    lastmodified = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    mac_enc = enc_value(KEY, mac.hexdigest().upper().encode(), lastmodified, "str")
    ages = []
    for rf in recipient_files:
        with open(rf) as f:
            recipient = f.read().strip()
        enc = age_encrypt(rf, KEY)
        ages.append((recipient, enc))
    lines.append("sops:")
    if layout == "3.8":
        for empty in ("kms", "gcp_kms", "azure_kv", "hc_vault"):
            lines.append("    %s: []" % empty)
        lines.append("    age:")
        for r, e in ages:
            lines.append("        - recipient: %s" % r)
            lines.append("          enc: |")
            lines.extend("            " + l for l in e.splitlines())
        lines.append('    lastmodified: "%s"' % lastmodified)
        lines.append("    mac: %s" % mac_enc)
        lines.append("    pgp: []")
        lines.append("    unencrypted_suffix: _unencrypted")
        lines.append("    version: 3.8.1")
    else:
        lines.append("    age:")
        for r, e in ages:
            lines.append("        - enc: |")
            lines.extend("            " + l for l in e.splitlines())
            lines.append("          recipient: %s" % r)
        lines.append('    lastmodified: "%s"' % lastmodified)
        lines.append("    mac: %s" % mac_enc)
        lines.append("    unencrypted_suffix: _unencrypted")
        lines.append("    version: 3.13.3")
    sys.stdout.write("\n".join(lines) + "\n")
    with os.fdopen(3, "w") as f:
        json.dump(plain_json(TREE), f)


def decrypt(identity_file):
    """Reads a flat SOPS file (what n3x writes) and verifies it the way sops does."""
    text = sys.stdin.read()
    top, meta = text.split("\nsops:\n", 1)
    values = []
    for line in top.splitlines():
        k, v = line.split(": ", 1)
        values.append((k, v))
    encs = re.findall(r"enc: \|\n((?:            .*\n)+)", meta)
    lastmodified = re.search(r'lastmodified: "([^"]+)"', meta).group(1)
    mac_enc = re.search(r"\n    mac: (ENC\[.*\])\n", meta).group(1)
    key = None
    for block in encs:
        armored = "".join(l[12:] + "\n" for l in block.splitlines())
        r = subprocess.run(["age", "-d", "-i", identity_file], input=armored.encode(), capture_output=True)
        if r.returncode == 0:
            key = r.stdout
            break
    if key is None or len(key) != 32:
        sys.stderr.write("no identity matched\n")
        sys.exit(1)
    out = {}
    mac = hashlib.sha512()
    for k, v in values:
        plain, kind = dec_value(key, v, k + ":")
        if kind != "str":
            sys.exit("unexpected type")
        out[k] = plain.decode()
        mac.update(plain)
    stored, _ = dec_value(key, mac_enc, lastmodified)
    if stored.decode() != mac.hexdigest().upper():
        sys.stderr.write("MAC mismatch\n")
        sys.exit(1)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if sys.argv[1] == "encrypt":
        encrypt(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "decrypt":
        decrypt(sys.argv[2])
    else:
        sys.exit("usage: encrypt LAYOUT RECIPIENT_FILE... | decrypt IDENTITY_FILE")
