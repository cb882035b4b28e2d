#!/usr/bin/env python3
"""Known answers for keyguard's deposit data (src/keys/deposit_data.rs), independent of
keyguard's Rust code: DepositMessage, DepositData, hash_tree_root, compute_domain and
compute_signing_root come from the executable consensus spec (`eth-consensus-specs`), the
signature from py_ecc (G2ProofOfPossession, deterministic).

Re-run (Python 3.12+):

    /root/.pyenv/versions/3.12.1/bin/python3 -m venv /tmp/specvenv
    /tmp/specvenv/bin/pip install eth-consensus-specs py_ecc ckzg
    /tmp/specvenv/bin/python interop-tests/scripts/deposit_kat.py

The committed values were produced with eth-consensus-specs 1.7.0b4 and py-ecc 8.0.0.
"""
from eth_consensus_specs.phase0 import mainnet as spec
from py_ecc.bls import G2ProofOfPossession as bls

sk = 0x25295f0d1d592a90b333e26e85149708208e9f8e8bc18f6c77bd62f8ad7a6866  # interop key 0
pk = bls.SkToPk(sk)
wc = bytes.fromhex("01" + "00" * 11 + "d8da6bf26964af9d7eed9e03e53415d37aa96045")
for fv, amount in ((b"\x00\x00\x00\x00", 32_000_000_000), (b"\x00\x00\x00\x01", 32_000_000_000), (b"\x00\x00\x00\x01", 1_000_000_000)):
    msg = spec.DepositMessage(pubkey=pk, withdrawal_credentials=wc, amount=amount)
    domain = spec.compute_domain(spec.DOMAIN_DEPOSIT, spec.Version(fv))
    root = spec.compute_signing_root(msg, domain)
    sig = bls.Sign(sk, root)
    assert bls.Verify(pk, root, sig)
    data = spec.DepositData(pubkey=pk, withdrawal_credentials=wc, amount=amount, signature=sig)
    print("fork", fv.hex(), "amount", amount)
    print(" pubkey", pk.hex())
    print(" domain", bytes(domain).hex())
    print(" signing_root", bytes(root).hex())
    print(" deposit_message_root", bytes(msg.hash_tree_root()).hex())
    print(" signature", sig.hex())
    print(" deposit_data_root", bytes(data.hash_tree_root()).hex())
