#!/usr/bin/env python3
"""Known-answer signing fixtures for keyguard, computed with the executable consensus spec.

Independent of keyguard's Rust code: containers, hash_tree_root, compute_domain, get_domain
and compute_signing_root all come from the `eth-consensus-specs` package, signatures from
`py_ecc` (G2ProofOfPossession). For every request type x fork (PHASE0..GLOAS) x preset
(mainnet, minimal) where the type exists, it writes a request body shaped like the ones
Lighthouse / Teku / Lodestar send (snake_case, decimal-string integers, `fork_info`,
Lighthouse's synthetic Capella fork_info for post-Deneb exits, Electra aggregates with
`committee_bits` under AGGREGATE_AND_PROOF, registrations without fork_info), the expected
signing root and the signature by an interop key, to
`interop-tests/fixtures/signing-fixtures.json`.

Gloas (EIP-7732): the five new types of remote-signing-api v1.4.0 (`{version, data}`),
Lighthouse's bare `PAYLOAD_ATTESTATION` shape, Gloas aggregates (progressive
`Attestation`), and the fork boundary (last Fulu slot, first Gloas slot) for bare and V2
aggregates, attestations and blocks. Mainnet has no Gloas epoch, so the mainnet-preset
Gloas fixtures run on the built-in Sepolia schedule (GLOAS at epoch 353024, from
eth-clients/sepolia); the minimal test network schedules GLOAS at epoch 70.
`BUILDER_REQUEST_AUTH` follows builder-specs `RequestAuthV1` (`DOMAIN_REQUEST_AUTH`
0x0B000001, genesis fork version, zero root), defined here as the spec package lacks it.

Re-run (needs Python 3.12+; takes a few minutes):

    /root/.pyenv/versions/3.12.1/bin/python3 -m venv /tmp/specvenv
    /tmp/specvenv/bin/pip install eth-consensus-specs py_ecc ckzg
    /tmp/specvenv/bin/python interop-tests/scripts/gen_signing_fixtures.py

Output is deterministic (seeded), so an unchanged spec reproduces the committed file.
Tested with eth-consensus-specs 1.7.0b4 and py_ecc 8.0.0.
"""

import hashlib
import importlib
import json
import random
import sys
from pathlib import Path

import ssz
from py_ecc.bls import G2ProofOfPossession as bls

FORKS = ["phase0", "altair", "bellatrix", "capella", "deneb", "electra", "fulu", "gloas"]
FAR_FUTURE_EPOCH = 2**64 - 1
BUILDER_INDEX_SELF_BUILD = 2**64 - 1

# eth-clients/sepolia metadata/config.yaml (mainnet preset).
SEPOLIA = {
    "versions": {f: bytes.fromhex(v) for f, v in zip(FORKS, [
        "90000069", "90000070", "90000071", "90000072", "90000073", "90000074", "90000075", "90000076"])},
    "epochs": dict(zip(FORKS, [0, 50, 100, 56832, 132608, 222464, 272640, 353024])),
    "gvr": bytes.fromhex("d8ea171f3c94aea21ebc42a1ed61052acf3f9209c00e4efbaaddac09ed9b8078"),
}
BLS_CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001

# The minimal-preset test network: spec minimal fork versions, a fork every 10 epochs
# (so a message two epochs into a fork stays in it).
MINIMAL_EPOCHS = {f: 10 * i for i, f in enumerate(FORKS)}
MINIMAL_CONFIG = "\n".join(
    ["PRESET_BASE: minimal", "CONFIG_NAME: minimal-fixtures", "GENESIS_FORK_VERSION: 0x00000001"]
    + [
        line
        for i, f in enumerate(FORKS[1:], start=1)
        for line in (f"{f.upper()}_FORK_VERSION: 0x0{i}000001", f"{f.upper()}_FORK_EPOCH: {10 * i}")
    ]
) + "\n"
MAINNET_GVR = bytes.fromhex("4b363db94e286120d76eb905340fdd4e54bfe9f06bf33ff6cf5ad27f511bfe95")
MINIMAL_GVR = hashlib.sha256(b"keyguard minimal fixtures").digest()


def interop_secret(i: int) -> int:
    return int.from_bytes(hashlib.sha256(i.to_bytes(32, "little")).digest(), "little") % BLS_CURVE_ORDER


def to_json(v):
    """Client JSON: decimal-string ints, 0x hex bytes and SSZ-encoded bitfields."""
    if isinstance(v, (ssz.BitList, ssz.BitVector, ssz.ProgressiveBitList)):
        return "0x" + v.encode_bytes().hex()
    if isinstance(v, ssz.ProgressiveList) and issubclass(type(v).ELEMENT_TYPE, ssz.Uint8):
        # ProgressiveList[Byte] (Transaction, BlockAccessList): hex, as the beacon API sends it.
        return "0x" + v.encode_bytes().hex()
    if isinstance(v, ssz.Boolean):
        return bool(v)
    if isinstance(v, bytes):
        return "0x" + bytes(v).hex()
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, (ssz.Container, ssz.ProgressiveContainer)):
        return {name: to_json(getattr(v, name)) for name in type(v).model_fields}
    if isinstance(v, ssz.ByteList):
        return "0x" + v.encode_bytes().hex()
    return [to_json(x) for x in v]


class Filler:
    """Deterministic non-trivial values for any spec SSZ type."""

    def __init__(self, seed):
        self.rng = random.Random(seed)

    def value(self, typ):
        rng = self.rng
        if issubclass(typ, (ssz.Container, ssz.ProgressiveContainer)):
            return typ(**{n: self.value(f.annotation) for n, f in typ.model_fields.items()})
        if issubclass(typ, ssz.ProgressiveBitList):
            n = rng.randint(1, 300)
            return typ(data=[rng.random() < 0.5 for _ in range(n)])
        if issubclass(typ, ssz.ProgressiveList):
            if issubclass(typ.ELEMENT_TYPE, ssz.Uint8):
                return typ(data=list(rng.randbytes(rng.randint(1, 90))))
            n = rng.randint(1, 3)
            return typ(data=[self.value(typ.ELEMENT_TYPE) for _ in range(n)])
        if issubclass(typ, ssz.BitList):
            n = rng.randint(1, min(typ.LIMIT, 40))
            return typ.of(*[rng.random() < 0.5 for _ in range(n)])
        if issubclass(typ, ssz.BitVector):
            return typ.of(*[rng.random() < 0.5 for _ in range(typ.LENGTH)])
        if issubclass(typ, ssz.Boolean):
            return typ(rng.random() < 0.5)
        if issubclass(typ, ssz.BaseUint):
            bits = 64 if not hasattr(typ, "BITS") else typ.BITS
            return typ(rng.getrandbits(min(bits, 63)))
        if issubclass(typ, ssz.ByteVector):
            return typ(rng.randbytes(typ.LENGTH))
        if issubclass(typ, ssz.ByteList):
            return typ(data=rng.randbytes(rng.randint(1, min(typ.LIMIT, 24))))
        if issubclass(typ, ssz.Vector):
            return typ(data=[self.value(typ.ELEMENT_TYPE) for _ in range(typ.LENGTH)])
        if issubclass(typ, ssz.List):
            n = rng.randint(1, min(typ.LIMIT, 2))
            return typ(data=[self.value(typ.ELEMENT_TYPE) for _ in range(n)])
        raise TypeError(f"no filler for {typ}")


def fork_info_json(prev, cur, epoch, gvr):
    return {
        "fork": {"previous_version": "0x" + prev.hex(), "current_version": "0x" + cur.hex(), "epoch": str(epoch)},
        "genesis_validators_root": "0x" + gvr.hex(),
    }


class Generator:
    def __init__(self, preset, network=None):
        self.preset = preset
        self.specs = {f: importlib.import_module(f"eth_consensus_specs.{f}.{preset}") for f in FORKS}
        last = self.specs[FORKS[-1]]
        self.versions = {"phase0": bytes(last.config.GENESIS_FORK_VERSION)}
        self.epochs = {"phase0": 0}
        for f in FORKS[1:]:
            self.versions[f] = bytes(getattr(last.config, f"{f.upper()}_FORK_VERSION"))
            self.epochs[f] = int(getattr(last.config, f"{f.upper()}_FORK_EPOCH"))
        if network == "sepolia":
            self.versions, self.epochs = dict(SEPOLIA["versions"]), dict(SEPOLIA["epochs"])
            self.network = "sepolia"
            self.gvr = SEPOLIA["gvr"]
        elif preset == "minimal":
            # The spec's minimal config schedules nothing; the test network does.
            self.epochs = dict(MINIMAL_EPOCHS)
            self.network = "minimal-fixtures"
            self.gvr = MINIMAL_GVR
        else:
            self.network = "mainnet"
            self.gvr = MAINNET_GVR
        self.filler = Filler(f"keyguard-{preset}" if self.network != "sepolia" else "keyguard-sepolia")
        self.fixtures = []

    # -- spec helpers ------------------------------------------------------------------
    def prev_fork(self, fork):
        i = FORKS.index(fork)
        return FORKS[max(i - 1, 0)]

    def fork_info(self, fork):
        """What a VC sends while `fork` is the current fork."""
        return (self.versions[self.prev_fork(fork)], self.versions[fork], self.epochs[fork])

    def domain(self, spec, domain_type, epoch, fork_info):
        """spec.get_domain on a state that carries `fork_info`."""
        prev, cur, fork_epoch = fork_info
        state = spec.BeaconState(
            fork=spec.Fork(previous_version=prev, current_version=cur, epoch=fork_epoch),
            genesis_validators_root=self.gvr,
        )
        return spec.get_domain(state, domain_type, spec.Epoch(epoch))

    def message_epoch(self, fork, offset=2):
        return self.epochs[fork] + offset

    def slot_in(self, spec, epoch):
        return int(epoch) * int(spec.SLOTS_PER_EPOCH) + 3

    def add(self, name, fork, spec, body, obj_root_or_obj, domain, with_fork_info=None, extra=None):
        root = spec.compute_signing_root(obj_root_or_obj, domain)
        if with_fork_info is not None:
            body["fork_info"] = fork_info_json(*with_fork_info, self.gvr)
        key_index = len(self.fixtures) % 16
        sk = interop_secret(key_index)
        signature = bls.Sign(sk, bytes(root))
        self.fixtures.append(
            {
                "name": f"{self.preset}/{fork}/{name}",
                "preset": self.preset,
                "network": self.network,
                "fork": fork.upper(),
                "type": body["type"],
                "body": body,
                "signing_root": "0x" + bytes(root).hex(),
                "interop_key_index": key_index,
                "secret_key": "0x" + sk.to_bytes(32, "big").hex(),
                "pubkey": "0x" + bls.SkToPk(sk).hex(),
                "signature": "0x" + signature.hex(),
                **(extra or {}),
            }
        )

    # -- request types -----------------------------------------------------------------
    def blocks(self, fork):
        spec = self.specs[fork]
        epoch = self.message_epoch(fork)
        block = self.filler.value(spec.BeaconBlock)
        block.slot = spec.Slot(self.slot_in(spec, epoch))
        domain = self.domain(spec, spec.DOMAIN_BEACON_PROPOSER, epoch, self.fork_info(fork))
        if fork in ("phase0", "altair"):
            payload = {"version": fork.upper(), "block": to_json(block)}
        else:
            header = spec.BeaconBlockHeader(
                slot=block.slot,
                proposer_index=block.proposer_index,
                parent_root=block.parent_root,
                state_root=block.state_root,
                body_root=spec.hash_tree_root(block.body),
            )
            payload = {"version": fork.upper(), "block_header": to_json(header)}
        self.add("BLOCK_V2", fork, spec, {"type": "BLOCK_V2", "beacon_block": payload}, block, domain, self.fork_info(fork))
        if fork == "phase0":
            # Teku's legacy type for phase0.
            self.add("BLOCK", fork, spec, {"type": "BLOCK", "block": to_json(block)}, block, domain, self.fork_info(fork))

    def attestations(self, fork):
        spec = self.specs[fork]
        for label, epoch in (("ATTESTATION", self.message_epoch(fork)), ("ATTESTATION@fork-epoch", self.epochs[fork])):
            data = self.filler.value(spec.AttestationData)
            data.slot = spec.Slot(self.slot_in(spec, epoch))
            data.source.epoch = spec.Epoch(max(epoch - 1, 0))
            data.target.epoch = spec.Epoch(epoch)
            if FORKS.index(fork) >= FORKS.index("gloas"):
                # From Gloas on `index` is the payload-presence vote: 1 must be signed.
                data.index = spec.CommitteeIndex(1 if label == "ATTESTATION" else 0)
            domain = self.domain(spec, spec.DOMAIN_BEACON_ATTESTER, epoch, self.fork_info(fork))
            self.add(label, fork, spec, {"type": "ATTESTATION", "attestation": to_json(data)}, data, domain, self.fork_info(fork))
        if fork != "phase0":
            # Target in the previous fork, signed after the fork: previous_version applies.
            prev = self.prev_fork(fork)
            epoch = max(self.epochs[fork] - 1, 0)
            if self.epochs[prev] <= epoch < self.epochs[fork]:
                data = self.filler.value(spec.AttestationData)
                data.target.epoch = spec.Epoch(epoch)
                data.source.epoch = spec.Epoch(max(epoch - 1, 0))
                domain = self.domain(spec, spec.DOMAIN_BEACON_ATTESTER, epoch, self.fork_info(fork))
                self.add("ATTESTATION@previous-fork", fork, spec, {"type": "ATTESTATION", "attestation": to_json(data)}, data, domain, self.fork_info(fork))

    def randao_and_selection(self, fork):
        spec = self.specs[fork]
        epoch = self.message_epoch(fork)
        domain = self.domain(spec, spec.DOMAIN_RANDAO, epoch, self.fork_info(fork))
        body = {"type": "RANDAO_REVEAL", "randao_reveal": {"epoch": str(epoch)}}
        self.add("RANDAO_REVEAL", fork, spec, body, spec.Epoch(epoch), domain, self.fork_info(fork))
        slot = self.slot_in(spec, epoch)
        domain = self.domain(spec, spec.DOMAIN_SELECTION_PROOF, epoch, self.fork_info(fork))
        body = {"type": "AGGREGATION_SLOT", "aggregation_slot": {"slot": str(slot)}}
        self.add("AGGREGATION_SLOT", fork, spec, body, spec.Slot(slot), domain, self.fork_info(fork))

    def exits(self, fork):
        spec = self.specs[fork]
        epoch = self.message_epoch(fork)
        exit_ = spec.VoluntaryExit(epoch=spec.Epoch(epoch), validator_index=spec.ValidatorIndex(self.filler.rng.getrandbits(20)))
        body = {"type": "VOLUNTARY_EXIT", "voluntary_exit": to_json(exit_)}
        if FORKS.index(fork) >= FORKS.index("deneb"):
            # EIP-7044, as written in the spec's process_voluntary_exit.
            domain = spec.compute_domain(spec.DOMAIN_VOLUNTARY_EXIT, spec.Version(self.versions["capella"]), self.gvr)
            capella = (self.versions["capella"], self.versions["capella"], self.epochs["capella"])
            self.add("VOLUNTARY_EXIT(lighthouse-capella-fork-info)", fork, spec, dict(body), exit_, domain, capella)
            self.add("VOLUNTARY_EXIT(teku-real-fork-info)", fork, spec, dict(body), exit_, domain, self.fork_info(fork))
        else:
            domain = self.domain(spec, spec.DOMAIN_VOLUNTARY_EXIT, epoch, self.fork_info(fork))
            self.add("VOLUNTARY_EXIT", fork, spec, body, exit_, domain, self.fork_info(fork))

    def aggregates(self, fork):
        spec = self.specs[fork]
        epoch = self.message_epoch(fork)
        agg = self.filler.value(spec.AggregateAndProof)
        agg.aggregate.data.slot = spec.Slot(self.slot_in(spec, epoch))
        domain = self.domain(spec, spec.DOMAIN_AGGREGATE_AND_PROOF, epoch, self.fork_info(fork))
        body = {"type": "AGGREGATE_AND_PROOF", "aggregate_and_proof": to_json(agg)}
        self.add("AGGREGATE_AND_PROOF", fork, spec, body, agg, domain, self.fork_info(fork))
        body = {"type": "AGGREGATE_AND_PROOF_V2", "aggregate_and_proof": {"version": fork.upper(), "data": to_json(agg)}}
        self.add("AGGREGATE_AND_PROOF_V2", fork, spec, body, agg, domain, self.fork_info(fork))

    def sync(self, fork):
        if fork == "phase0":
            return
        spec = self.specs[fork]
        epoch = self.message_epoch(fork)
        slot = self.slot_in(spec, epoch)
        root = spec.Root(self.filler.rng.randbytes(32))
        domain = self.domain(spec, spec.DOMAIN_SYNC_COMMITTEE, epoch, self.fork_info(fork))
        body = {"type": "SYNC_COMMITTEE_MESSAGE", "sync_committee_message": {"beacon_block_root": "0x" + bytes(root).hex(), "slot": str(slot)}}
        self.add("SYNC_COMMITTEE_MESSAGE", fork, spec, body, root, domain, self.fork_info(fork))
        sel = spec.SyncAggregatorSelectionData(slot=spec.Slot(slot), subcommittee_index=ssz.Uint64(3))
        domain = self.domain(spec, spec.DOMAIN_SYNC_COMMITTEE_SELECTION_PROOF, epoch, self.fork_info(fork))
        body = {"type": "SYNC_COMMITTEE_SELECTION_PROOF", "sync_aggregator_selection_data": to_json(sel)}
        self.add("SYNC_COMMITTEE_SELECTION_PROOF", fork, spec, body, sel, domain, self.fork_info(fork))
        cap = self.filler.value(spec.ContributionAndProof)
        cap.contribution.slot = spec.Slot(slot)
        domain = self.domain(spec, spec.DOMAIN_CONTRIBUTION_AND_PROOF, epoch, self.fork_info(fork))
        body = {"type": "SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF", "contribution_and_proof": to_json(cap)}
        self.add("SYNC_COMMITTEE_CONTRIBUTION_AND_PROOF", fork, spec, body, cap, domain, self.fork_info(fork))

    def gloas_types(self, fork):
        """The five Gloas request types of remote-signing-api v1.4.0, and Lighthouse's shape."""
        if FORKS.index(fork) < FORKS.index("gloas"):
            return
        spec = self.specs[fork]
        version = fork.upper()
        slot = spec.Slot(self.slot_in(spec, self.message_epoch(fork)))
        info = self.fork_info(fork)

        def domain(domain_type, at_slot):
            return self.domain(spec, domain_type, spec.compute_epoch_at_slot(at_slot), info)

        def versioned(kind, obj):
            return {"type": kind, kind.lower(): {"version": version, "data": to_json(obj)}}

        for label, builder_index in (("", None), ("(self-build)", BUILDER_INDEX_SELF_BUILD)):
            bid = self.filler.value(spec.ExecutionPayloadBid)
            bid.slot = slot
            if builder_index is not None:
                bid.builder_index = spec.BuilderIndex(builder_index)
                bid.value = spec.Gwei(0)
                bid.execution_payment = spec.Gwei(0)
            self.add("EXECUTION_PAYLOAD_BID" + label, fork, spec, versioned("EXECUTION_PAYLOAD_BID", bid),
                     bid, domain(spec.DOMAIN_BEACON_BUILDER, bid.slot), info)

            envelope = self.filler.value(spec.ExecutionPayloadEnvelope)
            envelope.payload.slot_number = ssz.Uint64(int(slot))
            if builder_index is not None:
                envelope.builder_index = spec.BuilderIndex(builder_index)
            # get_execution_payload_envelope_signature: the epoch of state.slot, the
            # envelope's slot (payload.slot_number).
            self.add("EXECUTION_PAYLOAD_ENVELOPE" + label, fork, spec,
                     versioned("EXECUTION_PAYLOAD_ENVELOPE", envelope), envelope,
                     domain(spec.DOMAIN_BEACON_BUILDER, slot), info)

        data = self.filler.value(spec.PayloadAttestationData)
        data.slot = slot
        ptc = domain(spec.DOMAIN_PTC_ATTESTER, data.slot)
        self.add("PAYLOAD_ATTESTATION_MESSAGE", fork, spec, versioned("PAYLOAD_ATTESTATION_MESSAGE", data), data, ptc, info)
        lighthouse = {"type": "PAYLOAD_ATTESTATION", "payload_attestation_data": to_json(data)}
        self.add("PAYLOAD_ATTESTATION(lighthouse)", fork, spec, lighthouse, data, ptc, info)

        prefs = self.filler.value(spec.ProposerPreferences)
        prefs.proposal_slot = spec.Slot(int(slot) + int(spec.SLOTS_PER_EPOCH))
        self.add("PROPOSER_PREFERENCES", fork, spec, versioned("PROPOSER_PREFERENCES", prefs), prefs,
                 domain(spec.DOMAIN_PROPOSER_PREFERENCES, prefs.proposal_slot), info)

        class RequestAuthData(ssz.ByteList):
            LIMIT = 4096

        class BuilderRequestAuth(ssz.Container):
            data: RequestAuthData
            slot: ssz.Uint64

        auth = BuilderRequestAuth(data=RequestAuthData(data=b"https://builder.example.org:18550/"), slot=ssz.Uint64(int(slot)))
        auth_domain = spec.compute_domain(spec.DomainType(b"\x0b\x00\x00\x01"), spec.Version(self.versions["phase0"]))
        body = versioned("BUILDER_REQUEST_AUTH", auth)
        self.add("BUILDER_REQUEST_AUTH", fork, spec, body, auth, auth_domain)

    def fork_boundary(self):
        """The last Fulu slot and the first Gloas slot: the fork of the slot picks the SSZ type."""
        first_gloas_epoch = self.epochs["gloas"]
        for fork, epoch, offset, label in (
            ("fulu", first_gloas_epoch - 1, -1, "@last-fulu-slot"),
            ("gloas", first_gloas_epoch, 0, "@first-gloas-slot"),
        ):
            spec = self.specs[fork]
            slot = spec.Slot(first_gloas_epoch * int(spec.SLOTS_PER_EPOCH) + offset)
            info = self.fork_info(fork)
            extra = {"boundary": label.lstrip("@")}
            agg = self.filler.value(spec.AggregateAndProof)
            agg.aggregate.data.slot = slot
            domain = self.domain(spec, spec.DOMAIN_AGGREGATE_AND_PROOF, epoch, info)
            self.add("AGGREGATE_AND_PROOF" + label, fork, spec,
                     {"type": "AGGREGATE_AND_PROOF", "aggregate_and_proof": to_json(agg)}, agg, domain, info, extra)
            body = {"type": "AGGREGATE_AND_PROOF_V2", "aggregate_and_proof": {"version": fork.upper(), "data": to_json(agg)}}
            self.add("AGGREGATE_AND_PROOF_V2" + label, fork, spec, body, agg, domain, info, extra)
            data = self.filler.value(spec.AttestationData)
            data.slot, data.index = slot, spec.CommitteeIndex(0 if fork == "fulu" else 1)
            data.source.epoch, data.target.epoch = spec.Epoch(epoch - 1), spec.Epoch(epoch)
            domain = self.domain(spec, spec.DOMAIN_BEACON_ATTESTER, epoch, info)
            self.add("ATTESTATION" + label, fork, spec, {"type": "ATTESTATION", "attestation": to_json(data)}, data, domain, info, extra)
            header = self.filler.value(spec.BeaconBlockHeader)
            header.slot = slot
            domain = self.domain(spec, spec.DOMAIN_BEACON_PROPOSER, epoch, info)
            body = {"type": "BLOCK_V2", "beacon_block": {"version": fork.upper(), "block_header": to_json(header)}}
            self.add("BLOCK_V2" + label, fork, spec, body, header, domain, info, extra)
            if fork == "gloas":
                ptc = self.filler.value(spec.PayloadAttestationData)
                ptc.slot = slot
                domain = self.domain(spec, spec.DOMAIN_PTC_ATTESTER, epoch, info)
                body = {"type": "PAYLOAD_ATTESTATION_MESSAGE", "payload_attestation_message": {"version": "GLOAS", "data": to_json(ptc)}}
                self.add("PAYLOAD_ATTESTATION_MESSAGE" + label, fork, spec, body, ptc, domain, info, extra)

    def remote_signing_api_examples(self):
        """The GLOAS request examples of remote-signing-api v1.4.0 (signing/paths/sign.yaml),
        with roots from the spec. Only BLOCK_V2 (GLOAS) publishes a signingRoot there; it is
        checked against the spec here. The examples use fork_info 0x00000001 / 0x00000001 /
        epoch 1 and suit a network whose genesis version is 0x00000001 (this minimal one)."""
        spec = self.specs["gloas"]
        info = (bytes.fromhex("00000001"), bytes.fromhex("00000001"), 1)
        gvr = bytes.fromhex("04700007fabc8282644aed6d1c7c9e21d38a03a0c4ba193f3afe428824b3a673")
        saved_gvr, self.gvr = self.gvr, gvr
        b32 = lambda h: spec.Root(bytes.fromhex(h))
        r1 = "367cbd40ac7318427aadb97345a91fa2e965daf3158d7f1846f1306305f41bef"
        r2 = "fd18cf40cc907a739be483f1ca0ee23ad65cdd3df23205eabc6d660a75d1f54e"
        r3 = "a759d8029a69d4fdd8b3996086e9722983977e4efc1f12f4098ea3d93e868a6b"
        r4 = "100814c335d0ced5014cfa9d2e375e6d9b4e197381f8ce8af0473200fdc917fd"
        addr = spec.ExecutionAddress(bytes.fromhex("6fdfab408c56b6105a76eff5c0435d09fc6ed7a9"))
        extra = {"source": "remote-signing-api v1.4.0 example"}

        def dom(domain_type, slot):
            return self.domain(spec, domain_type, spec.compute_epoch_at_slot(spec.Slot(slot)), info)

        def versioned(kind, obj):
            return {"type": kind, kind.lower(): {"version": "GLOAS", "data": to_json(obj)}}

        header = spec.BeaconBlockHeader(slot=0, proposer_index=4666673844721362956,
                                        parent_root=b32(r1), state_root=b32(r2), body_root=b32(r3))
        body = {"type": "BLOCK_V2", "beacon_block": {"version": "GLOAS", "block_header": to_json(header)}}
        root = spec.compute_signing_root(header, dom(spec.DOMAIN_BEACON_PROPOSER, 0))
        assert bytes(root).hex() == "aa2e0c465c1a45d7b6637fcce4ad6ceb71fc12064b548078d619a411f0de8adc", "published root"
        self.add("BLOCK_V2(remote-signing-api)", "gloas", spec, body, header, dom(spec.DOMAIN_BEACON_PROPOSER, 0), info, extra)

        bid = spec.ExecutionPayloadBid(parent_block_hash=b32(r1), parent_block_root=b32(r2), block_hash=b32(r3),
                                       prev_randao=b32(r4), fee_recipient=addr, gas_limit=30000000, builder_index=1,
                                       slot=1, value=1000000000, execution_payment=0,
                                       blob_kzg_commitments=spec.BlobKZGCommitments(data=[]),
                                       execution_requests_root=spec.Root())
        self.add("EXECUTION_PAYLOAD_BID(remote-signing-api)", "gloas", spec, versioned("EXECUTION_PAYLOAD_BID", bid),
                 bid, dom(spec.DOMAIN_BEACON_BUILDER, 1), info, extra)

        payload = spec.ExecutionPayload(parent_hash=b32(r1), fee_recipient=addr, state_root=b32(r2),
                                        receipts_root=spec.Root(), logs_bloom=spec.LogsBloom(), prev_randao=b32(r4),
                                        block_number=1, gas_limit=30000000, gas_used=0, timestamp=1,
                                        extra_data=spec.ExtraData(data=b""), base_fee_per_gas=1, block_hash=b32(r3),
                                        transactions=spec.Transactions(data=[]), withdrawals=spec.Withdrawals(data=[]),
                                        blob_gas_used=0, excess_blob_gas=0,
                                        block_access_list=spec.BlockAccessList(data=[]), slot_number=1)
        envelope = spec.ExecutionPayloadEnvelope(
            payload=payload, execution_requests=spec.ExecutionRequests(), builder_index=1,
            beacon_block_root=b32("235bc3400c2839fd856a524871200bd5e362db615fc4565e1870ed9a2a936464"),
            parent_beacon_block_root=b32(r1))
        self.add("EXECUTION_PAYLOAD_ENVELOPE(remote-signing-api)", "gloas", spec,
                 versioned("EXECUTION_PAYLOAD_ENVELOPE", envelope), envelope, dom(spec.DOMAIN_BEACON_BUILDER, 1), info, extra)

        data = spec.PayloadAttestationData(
            beacon_block_root=b32("cf8e0d4e9587369b2301d0790347320302cc0943d5a1884560367e8208d920f2"),
            slot=1, payload_present=True, blob_data_available=True)
        self.add("PAYLOAD_ATTESTATION_MESSAGE(remote-signing-api)", "gloas", spec,
                 versioned("PAYLOAD_ATTESTATION_MESSAGE", data), data, dom(spec.DOMAIN_PTC_ATTESTER, 1), info, extra)

        prefs = spec.ProposerPreferences(dependent_root=b32(r1), proposal_slot=32, validator_index=1,
                                         fee_recipient=addr, target_gas_limit=60000000)
        self.add("PROPOSER_PREFERENCES(remote-signing-api)", "gloas", spec, versioned("PROPOSER_PREFERENCES", prefs),
                 prefs, dom(spec.DOMAIN_PROPOSER_PREFERENCES, 32), info, extra)

        class RequestAuthData(ssz.ByteList):
            LIMIT = 4096

        class BuilderRequestAuth(ssz.Container):
            data: RequestAuthData
            slot: ssz.Uint64

        auth = BuilderRequestAuth(data=RequestAuthData(data=bytes.fromhex("68747470733a2f2f6275696c6465722e6578616d706c652e6f7267")),
                                  slot=ssz.Uint64(32))
        auth_domain = spec.compute_domain(spec.DomainType(b"\x0b\x00\x00\x01"), spec.Version(self.versions["phase0"]))
        self.add("BUILDER_REQUEST_AUTH(remote-signing-api)", "gloas", spec, versioned("BUILDER_REQUEST_AUTH", auth),
                 auth, auth_domain, None, extra)
        self.gvr = saved_gvr

    def fork_independent(self):
        spec = self.specs["bellatrix"]
        msg = self.filler.value(spec.DepositMessage)
        genesis = spec.config.GENESIS_FORK_VERSION
        domain = spec.compute_domain(spec.DOMAIN_DEPOSIT, genesis)
        body = {"type": "DEPOSIT", "deposit": {**to_json(msg), "genesis_fork_version": "0x" + bytes(genesis).hex()}}
        self.add("DEPOSIT", "phase0", spec, body, msg, domain)

        class ValidatorRegistrationV1(ssz.Container):
            fee_recipient: spec.ExecutionAddress
            gas_limit: ssz.Uint64
            timestamp: ssz.Uint64
            pubkey: spec.BLSPubkey

        reg = Filler(f"registration-{self.preset}").value(ValidatorRegistrationV1)
        domain = spec.compute_domain(spec.DomainType(b"\x00\x00\x00\x01"), genesis)
        body = {"type": "VALIDATOR_REGISTRATION", "validator_registration": to_json(reg)}
        self.add("VALIDATOR_REGISTRATION", "bellatrix", spec, body, reg, domain)

    def run(self, forks=FORKS, fork_independent=True):
        for fork in forks:
            if self.epochs[fork] == FAR_FUTURE_EPOCH:
                continue
            self.blocks(fork)
            self.attestations(fork)
            self.randao_and_selection(fork)
            self.exits(fork)
            self.aggregates(fork)
            self.sync(fork)
            self.gloas_types(fork)
            print(f"{self.preset}/{self.network}/{fork}: {len(self.fixtures)} fixtures", file=sys.stderr)
        if self.epochs["gloas"] != FAR_FUTURE_EPOCH:
            self.fork_boundary()
        if fork_independent:
            self.fork_independent()
        if self.network == "minimal-fixtures":
            self.remote_signing_api_examples()
        return self.fixtures


def main():
    out = Path(__file__).resolve().parent.parent / "fixtures" / "signing-fixtures.json"
    fixtures = []
    for preset in ("mainnet", "minimal"):
        fixtures += Generator(preset).run()
    # Mainnet schedules no Gloas yet: the mainnet-preset Gloas fixtures use Sepolia's.
    fixtures += Generator("mainnet", network="sepolia").run(forks=["gloas"], fork_independent=False)
    doc = {
        "_note": "Generated by interop-tests/scripts/gen_signing_fixtures.py from the executable "
        "consensus spec and py_ecc; do not edit by hand.",
        "networks": {
            "mainnet": {"builtin": "mainnet"},
            "sepolia": {"builtin": "sepolia"},
            "minimal-fixtures": {"config": MINIMAL_CONFIG},
        },
        "fixtures": fixtures,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(fixtures)} fixtures to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
