"""The block receiver on the real capture modes1.bin and on synthetic signals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from signal_gen import df11, random_df17, synthesize, with_crc

from hardware.modes.demod import Demodulator
from hardware.modes.receiver import ModeSMessage, Receiver

DATA = Path(__file__).resolve().parents[3] / "recordings" / "adsb"
MODES1 = DATA / "modes1.bin"
REFERENCE = DATA / "modes1.reference.txt"
AIRCRAFT = 0x4D2023


def run(rx: Receiver, iq: npt.NDArray[np.uint8], block_bytes: int) -> list[ModeSMessage]:
    out: list[ModeSMessage] = []
    for start in range(0, iq.size, block_bytes):
        out += rx.feed(iq[start : start + block_bytes])
    return out + rx.flush()


def reference() -> list[tuple[int, str]]:
    lines = [ln.split() for ln in REFERENCE.read_text().splitlines() if ln and ln[0] != "#"]
    return [(int(sample), hex_msg) for sample, hex_msg, _ in lines]


def overlap(found: list[tuple[float, str]], ref: list[tuple[int, str]], tol: float) -> int:
    """How many found (sample, hex) pairs are in `ref` within `tol` samples."""
    by_hex: dict[str, list[int]] = {}
    for sample, hex_msg in ref:
        by_hex.setdefault(hex_msg, []).append(sample)
    return sum(
        any(abs(sample - s) <= tol for s in by_hex.get(hex_msg, [])) for sample, hex_msg in found
    )


@pytest.fixture(scope="module")
def modes1() -> npt.NDArray[np.uint8]:
    if not MODES1.exists():
        pytest.skip("modes1.bin not available")
    return np.fromfile(MODES1, np.uint8)


@pytest.fixture(scope="module")
def modes1_messages(modes1: npt.NDArray[np.uint8]) -> list[ModeSMessage]:
    return run(Receiver(2_000_000), modes1, 1 << 17)


def test_modes1_at_2msps_decodes_more_than_dump1090_and_only_4d2023(
    modes1_messages: list[ModeSMessage],
) -> None:
    msgs = modes1_messages
    ref = reference()
    common = overlap([(m.sample, m.hex) for m in msgs], ref, tol=8)
    print(
        f"\nmodes1.bin 2.0 MS/s: {len(msgs)} messages, {common} of them in the readsb list of "
        f"{len(ref)}; by DF {sorted(Counter(m.df for m in msgs).items())}; "
        f"crc {sorted(Counter(m.crc for m in msgs).items())}"
    )
    assert len(msgs) >= 320  # dump1090 at 2.0 MS/s: 284
    assert {m.icao for m in msgs if m.df in (11, 17, 18)} == {AIRCRAFT}
    assert {m.icao for m in msgs} == {AIRCRAFT}
    assert common >= 330  # readsb's list holds 344 real ones (2124D3 is a false decode)
    assert all(m.crc in ("ok", "fixed", "ap", "iid") for m in msgs)


def test_modes1_messages_are_in_time_order_with_sane_levels(
    modes1_messages: list[ModeSMessage],
) -> None:
    samples = [m.sample for m in modes1_messages]
    assert samples == sorted(samples)
    assert all(-40.0 < m.signal_dbfs < 0.0 for m in modes1_messages)
    assert all(abs(m.t_s * 2_000_000 - m.sample) <= 0.5 + 1e-6 for m in modes1_messages)


def test_messages_are_immutable_records_of_their_frame(
    modes1_messages: list[ModeSMessage],
) -> None:
    m = modes1_messages[0]
    with pytest.raises(AttributeError):
        m.sample = 0  # type: ignore[misc]
    assert m.hex == m.msg.hex().upper()
    same = ModeSMessage(
        sample=m.sample,
        t_s=m.t_s,
        msg=m.msg,
        df=m.df,
        icao=m.icao,
        crc=m.crc,
        corrected_bits=m.corrected_bits,
        signal_dbfs=m.signal_dbfs,
    )
    assert same == m
    assert hash(same) == hash(m)


def test_modes1_decodes_identically_with_4k_and_256k_blocks(
    modes1: npt.NDArray[np.uint8], modes1_messages: list[ModeSMessage]
) -> None:
    # The noise floor is tracked per segment of absolute sample index and the
    # preamble search never looks across a block edge, so the cut does not matter.
    # (Unbatched: every block is demodulated as it comes, edges and all.)
    small = run(Receiver(2_000_000, batch_samples=0), modes1, 4096)
    odd = run(Receiver(2_000_000, batch_samples=0), modes1, 4096 + 2)  # split sample pairs
    large = run(Receiver(2_000_000, batch_samples=0), modes1, 256 * 1024)
    assert small == large
    assert odd == large
    assert large == modes1_messages


def test_batching_small_blocks_delays_messages_but_does_not_change_them(
    modes1: npt.NDArray[np.uint8], modes1_messages: list[ModeSMessage]
) -> None:
    rx = Receiver(2_000_000, batch_samples=100_000)
    per_feed = [rx.feed(modes1[start : start + 8192]) for start in range(0, modes1.size, 8192)]
    per_feed.append(rx.flush())
    # A batch is demodulated once 100 000 new samples are in: every 25 blocks of 4096.
    assert [k for k, msgs in enumerate(per_feed) if msgs][:2] == [24, 49]
    assert [m for msgs in per_feed for m in msgs] == modes1_messages
    unbatched = run(Receiver(2_000_000, batch_samples=0), modes1, 1 << 17)
    assert unbatched == modes1_messages
    with pytest.raises(ValueError, match="batch_samples"):
        Receiver(2_000_000, batch_samples=-1)


def test_modes1_resampled_to_2p4msps_gives_a_similar_yield(
    modes1: npt.NDArray[np.uint8], modes1_messages: list[ModeSMessage]
) -> None:
    signal = pytest.importorskip("scipy.signal")
    x = (modes1[0::2].astype(np.float64) - 127.5) + 1j * (modes1[1::2].astype(np.float64) - 127.5)
    y = signal.resample_poly(x, 6, 5)
    iq = np.empty(y.size * 2, np.float64)
    iq[0::2], iq[1::2] = y.real, y.imag
    iq_u8 = np.clip(np.round(iq + 127.5), 0, 255).astype(np.uint8)
    msgs = run(Receiver(2_400_000), iq_u8, 1 << 17)
    common = overlap([(m.sample * 5 / 6, m.hex) for m in msgs], reference(), tol=8)
    print(f"\nmodes1 resampled to 2.4 MS/s: {len(msgs)} messages, {common} in the readsb list")
    assert len(msgs) >= 320
    assert {m.icao for m in msgs} == {AIRCRAFT}
    assert common >= 330


def test_frame_split_across_two_blocks_is_recovered_once() -> None:
    rng = np.random.default_rng(5)
    frames = [random_df17(rng, AIRCRAFT) for _ in range(6)]
    iq, bursts = synthesize(frames, 2_000_000, 25.0, rng, spacing_us=300)
    whole = run(Receiver(2_000_000), iq, iq.size)
    assert len(whole) >= 5
    split = next(b for b in bursts[2:] if b.frame in {m.msg for m in whole})
    middle = 2 * int(split.start_sample + 120) + 1  # odd: one sample's I and Q in two blocks
    rx = Receiver(2_000_000, batch_samples=0)  # demodulate each block as it comes
    first = rx.feed(iq[:middle])
    second = rx.feed(iq[middle:])
    rest = rx.flush()
    assert split.frame not in {m.msg for m in first}
    assert [(m.sample, m.msg) for m in first + second + rest] == [(m.sample, m.msg) for m in whole]


def test_flush_decodes_a_frame_at_the_very_end_of_the_data() -> None:
    rng = np.random.default_rng(6)
    frames = [random_df17(rng, AIRCRAFT) for _ in range(4)]
    iq, bursts = synthesize(frames, 2_000_000, 25.0, rng, spacing_us=300)
    decoded = {m.msg for m in run(Receiver(2_000_000), iq, iq.size)}
    last = [b for b in bursts if b.frame in decoded][-1]
    end = 2 * int(last.start_sample + 8 * 2 + 112 * 2 + 3)  # just after its last bit
    rx = Receiver(2_000_000, batch_samples=0)
    fed = rx.feed(iq[:end])
    assert last.frame not in {m.msg for m in fed}
    flushed = rx.flush()
    assert [m.msg for m in flushed] == [last.frame]
    assert abs(flushed[0].t_s * 2e6 - last.start_sample) < 0.75


@pytest.mark.parametrize(
    ("data", "overlay", "df", "crc"),
    [
        ("20000F1F", AIRCRAFT, 4, "ap"),  # DF4 altitude reply: parity ^ address
        ("5D4D2023", 0x15, 11, "iid"),  # DF11 all-call reply to interrogator 0x15
    ],
)
def test_replies_without_a_full_crc_need_a_confirmed_address(
    data: str, overlay: int, df: int, crc: str
) -> None:
    rng = np.random.default_rng(8)
    from hardware.modes.crc import crc24

    body = bytes.fromhex(data)
    reply = body + (crc24(body) ^ overlay).to_bytes(3, "big")
    frames = [reply, df11(AIRCRAFT), reply]
    iq, _ = synthesize(frames, 2_000_000, 25.0, rng, spacing_us=400)
    msgs = run(Receiver(2_000_000), iq, 1 << 16)
    assert [(m.df, m.crc) for m in msgs] == [(11, "ok"), (df, crc)]
    assert msgs[1].icao == AIRCRAFT


def recovery(rate_hz: int, snr_db: float, count: int = 300) -> float:
    rng = np.random.default_rng(1)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(count)]
    iq, _ = synthesize(frames, rate_hz, snr_db, rng, spacing_us=400)
    got = {m.msg for m in run(Receiver(rate_hz), iq, 1 << 18)}
    rate = sum(f in got for f in frames) / count
    print(f"\nrecovery at {rate_hz / 1e6} MS/s, {snr_db} dB SNR: {rate:.1%}")
    return rate


def test_recovery_at_2p4msps_15db_snr() -> None:
    assert recovery(2_400_000, 15.0) >= 0.95


def test_recovery_at_2msps_20db_snr() -> None:
    # Sequence detection resolves the inter-symbol interference of pulses that
    # straddle two samples; the old per-bit slicer lost ~8 % here even at 60 dB.
    assert recovery(2_000_000, 20.0) >= 0.99


def test_recovery_at_2msps_16db_snr() -> None:
    assert recovery(2_000_000, 16.0) >= 0.95


def test_recovery_at_2p4msps_12db_snr() -> None:
    assert recovery(2_400_000, 12.0) >= 0.95


def test_recovery_at_2msps_14db_snr() -> None:
    # Weak frames that fail the magnitude detector are sliced again coherently
    # (in-phase part about the frame's own carrier) and soft-decoded (OSD + exact
    # likelihood of the candidate codewords): ~86 % before both.
    assert recovery(2_000_000, 14.0) >= 0.95


def test_recovery_at_2msps_12db_snr() -> None:
    # Frames within ~0.15 sample of straddling two samples keep ~6 bit errors
    # even under a genie-aided coherent sequence detector (partial response:
    # every other sample holds half a pulse whatever the bits). What recovers
    # them: the address of an aircraft already confirmed, fixed in another
    # coherent trellis pass (29 bits known, the CRC left for 83), order-2 OSD
    # over the rest and the exact likelihood of its candidates.
    # This seed: 97.3 %. Over seeds 1-48 (300 frames each) the mean is 94.9 %
    # (90.3-98.3 %): the receiver meets the target here, not on every draw.
    assert recovery(2_000_000, 12.0) >= 0.95


def test_coherent_detection_tolerates_a_carrier_offset() -> None:
    # Dongle and transponder tuning errors turn the carrier by tens of kHz: the
    # coherent pass tracks it (coarse frequency, local phase) instead of assuming
    # a fixed phase over the 120 us frame.
    rng = np.random.default_rng(1)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(300)]
    iq, _ = synthesize(frames, 2_000_000, 14.0, rng, spacing_us=400, freq_offset_hz=60e3)
    msgs = run(Receiver(2_000_000), iq, 1 << 18)
    got = {m.msg for m in msgs}
    assert sum(f in got for f in frames) / len(frames) >= 0.95
    assert all(m.msg in set(frames) for m in msgs)


def test_coherent_decodes_do_not_depend_on_how_the_iq_is_cut_into_blocks() -> None:
    # The receiver reads the block it demodulates at once in place and the
    # blocks it batches from its own copy: frames straddling the two must see
    # the same IQ as with one block per batch or many small ones.
    rng = np.random.default_rng(7)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(150)]
    iq, _ = synthesize(frames, 2_000_000, 12.0, rng, spacing_us=400)
    batch = 1 << 15  # samples: many batches, each one block of 1 << 16 bytes
    runs = [
        [(m.sample, m.msg, m.crc) for m in run(Receiver(2_000_000, batch_samples=batch), iq, block)]
        for block in (1 << 16, 1 << 14, 12_346)
    ]
    assert len([m for m in runs[0] if m[2] == "fixed"]) >= 20
    assert runs[1] == runs[0]
    assert runs[2] == runs[0]


def test_noise_alone_gives_no_messages_even_with_a_known_address() -> None:
    # The strongest repair path (coherent slicing + OSD) runs on every weak
    # candidate; on noise it must not invent a frame from a confirmed aircraft.
    rng = np.random.default_rng(12)
    sigma = 60.0 / np.sqrt(2 * 10 ** (12.0 / 10))  # the noise of the 12 dB tests
    iq = np.clip(np.round(rng.normal(127.5, sigma, 2 * 1_500_000)), 0, 255).astype(np.uint8)
    rx = Receiver(2_000_000)
    rx.book.confirm(0xABCDEF, 0.0)
    assert run(rx, iq, 1 << 18) == []


def test_weak_frames_from_unconfirmed_addresses_are_never_repaired() -> None:
    # One frame per address: a clean frame confirms its own address and nothing
    # else, so any repaired ("fixed") output could only be a wrong decode landing
    # on an address some other frame confirmed.
    rng = np.random.default_rng(13)
    addresses = rng.choice(1 << 24, 300, replace=False)
    frames = [random_df17(rng, int(a)) for a in addresses]
    iq, _ = synthesize(frames, 2_000_000, 12.0, rng, spacing_us=400)
    msgs = run(Receiver(2_000_000), iq, 1 << 18)
    assert len(msgs) >= 50  # the frames clean without repair
    assert all(m.msg in set(frames) for m in msgs)
    assert all(m.crc == "ok" for m in msgs)


def test_weak_frames_among_many_known_aircraft_are_repaired_to_their_own() -> None:
    # 200 confirmed aircraft, 300 weak frames from them: a frame's decided address
    # is within a few bits of several confirmed ones only by chance, and the
    # address-aided pass must still land every repair on the frame that was sent.
    rng = np.random.default_rng(2)
    addresses = rng.choice(1 << 24, 200, replace=False)
    frames = [random_df17(rng, int(addresses[rng.integers(0, 200)])) for _ in range(300)]
    iq, _ = synthesize(frames, 2_000_000, 12.0, rng, spacing_us=400)
    rx = Receiver(2_000_000)
    for address in addresses:
        rx.book.confirm(int(address), 0.0)
    msgs = run(rx, iq, 1 << 18)
    assert sum(m.crc == "fixed" for m in msgs) >= 100
    assert all(m.msg in set(frames) for m in msgs)
    got = {m.msg for m in msgs}
    assert sum(f in got for f in frames) / len(frames) >= 0.95


def test_soft_repairs_at_2msps_12db_reproduce_the_sent_frames() -> None:
    rng = np.random.default_rng(3)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(300)]
    iq, _ = synthesize(frames, 2_000_000, 12.0, rng, spacing_us=400)
    msgs = run(Receiver(2_000_000), iq, 1 << 18)
    fixed = [m for m in msgs if m.crc == "fixed"]
    assert len(fixed) >= 50
    assert any(m.corrected_bits >= 4 for m in fixed)
    assert all(m.msg in set(frames) for m in msgs)


def test_soft_repairs_at_low_snr_reproduce_the_sent_frames() -> None:
    rng = np.random.default_rng(2)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(200)]
    iq, _ = synthesize(frames, 2_400_000, 12.0, rng, spacing_us=400)
    msgs = run(Receiver(2_400_000), iq, 1 << 18)
    sent = set(frames)
    fixed = [m for m in msgs if m.crc == "fixed"]
    assert len(fixed) >= 10
    assert any(m.corrected_bits >= 2 for m in fixed)
    assert all(m.msg in sent for m in msgs)


def weak_df11(seed: int, snr_db: float) -> tuple[list[bytes], npt.NDArray[np.uint8], list[int]]:
    """300 DF11 frames (random CA) from 20 addresses at `snr_db`, 2.0 MS/s."""
    rng = np.random.default_rng(seed)
    addresses = [int(a) for a in rng.choice(1 << 24, 20, replace=False)]
    frames = [
        with_crc(bytes([0x58 | int(rng.integers(0, 8))]) + int(a).to_bytes(3, "big"))
        for a in rng.choice(addresses, 300)
    ]
    iq, _ = synthesize(frames, 2_000_000, snr_db, rng, spacing_us=300)
    return frames, iq, addresses


def fixed_df11(iq: npt.NDArray[np.uint8], addresses: list[int], **demod: float) -> list[bytes]:
    """The soft- or hard-repaired messages of a receiver that knows `addresses`."""
    rx = Receiver(2_000_000, demodulator=Demodulator(2_000_000, **demod))
    for address in addresses:
        rx.book.confirm(address, 0.0)
    return [m.msg for m in run(rx, iq, 1 << 18) if m.crc == "fixed"]


def test_soft_repairs_of_weak_df11_reproduce_the_sent_frames() -> None:
    # Twenty known addresses: a wrong repair with a known address but a wrong
    # CA field or address would show as a message that was not sent.
    frames, iq, addresses = weak_df11(31, 10.0)
    fixed = fixed_df11(iq, addresses)
    assert len(fixed) >= 80
    assert set(fixed) <= set(frames)


def test_coherent_df11_repairs_chosen_by_likelihood_reproduce_the_sent_frames() -> None:
    # repair_cost=0 turns off the OSD cost rule: what the soft repair adds to the
    # hard one-bit repairs then comes from the likelihood rescoring alone.
    frames, iq, addresses = weak_df11(32, 10.0)
    hard_only = fixed_df11(iq, addresses, repair_cost=0.0, rescore_candidates=1)
    rescored = fixed_df11(iq, addresses, repair_cost=0.0)
    assert len(rescored) >= len(hard_only) + 3
    assert set(rescored) <= set(frames)


def test_max_fix_bits_0_turns_off_soft_repair_too() -> None:
    rng = np.random.default_rng(2)
    frames = [random_df17(rng, 0xABCDEF) for _ in range(200)]
    iq, _ = synthesize(frames, 2_400_000, 12.0, rng, spacing_us=400)
    rx = Receiver(2_400_000, max_fix_bits=0)
    msgs = run(rx, iq, 1 << 18)
    assert msgs
    assert all(m.crc == "ok" and m.corrected_bits == 0 for m in msgs)


def verdict_frames() -> list[bytes]:
    """Frames covering every parity rule: clean, IID and AP from known and unknown
    addresses, one bit off, DF18 with and without CF 0, impossible formats."""
    from hardware.modes.crc import crc24, flip_bits

    def ap(data: bytes, icao: int) -> bytes:
        return data + (crc24(data) ^ icao).to_bytes(3, "big")

    rng = np.random.default_rng(4)
    df17 = random_df17(rng, AIRCRAFT)
    other17 = random_df17(rng, 0x123456)
    df18_cf0 = with_crc(bytes([0x90]) + (0x654321).to_bytes(3, "big") + bytes(7))
    df18_cf2 = with_crc(bytes([0x92]) + (0x777777).to_bytes(3, "big") + bytes(7))
    df11_iid = ap(bytes.fromhex("5D4D2023"), 0x15)  # IID 0x15 overlaid like an address
    return [
        ap(bytes.fromhex("20000F1F"), AIRCRAFT),  # DF4 before any confirmation
        df11(AIRCRAFT),
        ap(bytes.fromhex("20000F1F"), AIRCRAFT),  # DF4 after it
        ap(bytes.fromhex("28000F1F"), 0x999999),  # DF5 from an unknown address
        df17,
        flip_bits(df17, 40),  # one bit off, known address: repaired
        flip_bits(other17, 40),  # one bit off, unknown address: rejected
        df18_cf0,
        df18_cf2,
        df11_iid,
        ap(bytes.fromhex("5D123456"), 0x15),  # IID reply from an unknown address
        flip_bits(df11(AIRCRAFT), 30),
        ap(bytes.fromhex("A0000F1F") + bytes(7), AIRCRAFT),  # DF20
        bytes.fromhex("08000000000000"),  # DF1: not a Mode S reply format
        ap(bytes.fromhex("C8000F1F") + bytes(7), AIRCRAFT),  # DF24 (11xxx)
        other17,
    ]


def test_receiver_verdicts_agree_with_check_frame() -> None:
    from hardware.modes.candidates import Candidates
    from hardware.modes.crc_rows import frame_residuals
    from hardware.modes.frame_check import AddressBook, check_frame

    frames = verdict_frames()
    msg = np.zeros((len(frames), 14), np.uint8)
    for k, frame in enumerate(frames):
        msg[k, : len(frame)] = np.frombuffer(frame, np.uint8)
    df = (msg[:, 0] >> 3).astype(np.uint8)
    nbits = np.where(df >= 16, 112, 56).astype(np.int16)
    residual = np.where(df >= 16, frame_residuals(msg, 112), frame_residuals(msg, 56))
    n = len(frames)
    spacing = 400  # samples: no frame overlaps the next
    rows = Candidates(
        np.arange(n, dtype=np.int64) * spacing,
        np.zeros(n, np.float32),
        msg,
        df,
        nbits,
        residual.astype(np.uint32),
        np.zeros(n, np.float32),
        np.full(n, 30.0, np.float32),
        np.zeros(n, np.uint8),
    )
    rx = Receiver(2_000_000)
    got = [(m.msg, m.df, m.icao, m.crc, m.corrected_bits) for m in rx._accept(rows, 0)]
    book = AddressBook()
    want = []
    for k, frame in enumerate(frames):
        checked = check_frame(frame, book, k * spacing / 2e6, 1)
        if checked is not None:
            c = checked
            want.append((c.msg, c.df, c.icao, c.crc, c.corrected_bits))
    assert got == want
    assert {c for *_, c, _ in got} == {"ok", "ap", "iid", "fixed"}
    assert rx.book.known(1.0) == book.known(1.0)


def test_soft_repaired_rows_need_a_known_address_and_never_confirm() -> None:
    from hardware.modes.candidates import Candidates
    from hardware.modes.crc_rows import frame_residuals

    rng = np.random.default_rng(9)
    frames = [random_df17(rng, AIRCRAFT), random_df17(rng, 0x123456), df11(0x222222)]
    msg = np.zeros((3, 14), np.uint8)
    for k, frame in enumerate(frames):
        msg[k, : len(frame)] = np.frombuffer(frame, np.uint8)
    df = (msg[:, 0] >> 3).astype(np.uint8)
    rows = Candidates(
        np.array([0, 400, 800], np.int64),
        np.zeros(3, np.float32),
        msg,
        df,
        np.where(df >= 16, 112, 56).astype(np.int16),
        np.where(df >= 16, frame_residuals(msg, 112), frame_residuals(msg, 56)),
        np.zeros(3, np.float32),
        np.full(3, 30.0, np.float32),
        np.array([3, 2, 2], np.uint8),  # all three clean only after soft flips
    )
    rx = Receiver(2_000_000)
    rx.book.confirm(AIRCRAFT, 0.0)
    got = [(m.icao, m.crc, m.corrected_bits) for m in rx._accept(rows, 0)]
    assert got == [(AIRCRAFT, "fixed", 3)]
    assert rx.book.known(1.0) == frozenset({AIRCRAFT})
