//! The relay's wire format, byte for byte as the README documents it
//! ("Relay wire format"): each message's encoding, and decoding back.

use hyperswarm_native::relay::message::{DecodeError, JOIN_LEN};
use hyperswarm_native::relay::{EndReason, Message, Refusal};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

const TOKEN: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const COOKIE: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

#[test]
fn every_message_encodes_as_documented_and_decodes_back() {
    let token: [u8; 32] = hex(TOKEN).try_into().unwrap();
    let cookie: [u8; 16] = hex(COOKIE).try_into().unwrap();
    let cases: Vec<(Message, String)> = vec![
        (Message::Join { token, cookie }, format!("ff 52 01 01 {TOKEN} {COOKIE}")),
        (Message::Challenge { token, cookie }, format!("ff 52 01 02 {TOKEN} {COOKIE}")),
        (Message::Waiting { token, id: 0x0102030405060708, expires_in: 35 }, format!("ff 52 01 03 {TOKEN} 0102030405060708 00000023")),
        (Message::Paired { token, id: 0x1122334455667788, expires_in: 1800 }, format!("ff 52 01 04 {TOKEN} 1122334455667788 00000708")),
        (Message::Refused { token, reason: Refusal::Full }, format!("ff 52 01 05 {TOKEN} 01")),
        (Message::Refused { token, reason: Refusal::WaitingFull }, format!("ff 52 01 05 {TOKEN} 02")),
        (Message::Refused { token, reason: Refusal::PerIp }, format!("ff 52 01 05 {TOKEN} 03")),
        (Message::Refused { token, reason: Refusal::Taken }, format!("ff 52 01 05 {TOKEN} 04")),
        (Message::Refused { token, reason: Refusal::Subnet }, format!("ff 52 01 05 {TOKEN} 05")),
        (Message::Data { id: 0x0102030405060708, payload: b"hi" }, "ff 52 01 06 0102030405060708 6869".into()),
        (Message::Data { id: 1, payload: b"" }, "ff 52 01 06 0000000000000001".into()),
        (Message::Close { id: 0xfffffffffffffffe }, "ff 52 01 07 fffffffffffffffe".into()),
        (Message::Ended { token, reason: EndReason::Closed }, format!("ff 52 01 08 {TOKEN} 01")),
        (Message::Ended { token, reason: EndReason::Lifetime }, format!("ff 52 01 08 {TOKEN} 02")),
        (Message::Ended { token, reason: EndReason::Idle }, format!("ff 52 01 08 {TOKEN} 03")),
        (Message::Ended { token, reason: EndReason::NoPartner }, format!("ff 52 01 08 {TOKEN} 04")),
    ];
    for (msg, want) in &cases {
        let bytes = hex(want);
        assert_eq!(msg.encode(), bytes, "{msg:?}");
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(msg));
    }
    assert_eq!(hex(&cases[0].1).len(), JOIN_LEN);
    // Reasons a peer does not know yet are kept, not refused.
    let later = hex(&format!("ff 52 01 05 {TOKEN} 09"));
    assert_eq!(Message::decode(&later), Ok(Message::Refused { token, reason: Refusal::Other(9) }));
    // Not ours; another version; an unknown type; a wrong length.
    assert_eq!(Message::decode(&hex("ff 53 01 07 0000000000000001")), Err(DecodeError::NotRelay));
    assert_eq!(Message::decode(&hex("ff 52 02 07 0000000000000001")), Err(DecodeError::Version(2)));
    assert_eq!(Message::decode(&hex("ff 52 01 09 0000000000000001")), Err(DecodeError::Type(9)));
    assert_eq!(Message::decode(&hex("ff 52 01 07 00000000000001")), Err(DecodeError::Length { kind: 7, len: 11 }));
}
