//! The TKE's card commands on units: trusting a zone, enrolling units on a part card, and
//! loading key parts that cards deliver.

use super::*;
use crate::card::{Card, CardUri, Role};
use crate::error::Error;

impl Tke {
    fn card(&self, uri: &str) -> Result<(CardUri, PathBuf), Error> {
        let uri: CardUri = uri.parse()?;
        let module = crate::card::module_path(self.module.as_deref(), &uri)?;
        Ok((uri, module))
    }

    /// `cryptounit-zone-trust --ca <URI>`: the zone as the CA card records it.
    pub(super) async fn zone_trust(&mut self, ca: &str) -> Result<(), Error> {
        let (uri, module) = self.card(ca)?;
        let card = Card::open_public(&module, &uri)?;
        let zone = card.zone()?.ok_or_else(|| {
            Error::other(format!(
                "card {uri} records no zone (`strongroom card zone-create`)"
            ))
        })?;
        if card.ca_key(&zone.name)?.is_none() {
            return Err(Error::other(format!(
                "card {uri} is not a CA card of zone {}",
                zone.name
            )));
        }
        zone.validate().map_err(Error::other)?;
        let mut units = self.selected().await?;
        let n = units.len();
        let cmd = Cmd::TrustZone { zone: zone.clone() };
        if self.each(&mut units, vec![Some(cmd); n], None).await? {
            return Ok(());
        }
        print(
            self.out,
            format!(
                "{n} unit(s) trust zone {} ({} CA key(s)); next: `strongroom tke cryptounit-card-enroll --card <part card>`",
                zone.name,
                zone.ca_keys.len()
            ),
            &json!({"zone": zone, "units": units.iter().map(|u| u.id.to_string()).collect::<Vec<_>>()}),
        );
        Ok(())
    }

    /// `cryptounit-zone-forget <zone>`.
    pub(super) async fn zone_forget(&mut self, zone: &str) -> Result<(), Error> {
        let mut units = self.selected().await?;
        let n = units.len();
        let cmd = Cmd::ForgetZone {
            name: zone.to_string(),
        };
        if self.each(&mut units, vec![Some(cmd); n], None).await? {
            return Ok(());
        }
        print(
            self.out,
            format!("{n} unit(s) no longer trust zone {zone}"),
            &json!({"zone": zone, "units": n}),
        );
        Ok(())
    }

    /// `cryptounit-card-enroll --card <URI>`: the card's officer trusts the selected
    /// units' key-transport keys, as their signed statuses show them.
    pub(super) async fn card_enroll(&mut self, card: &str) -> Result<(), Error> {
        let units = self.selected().await?;
        let mut keys = Vec::new();
        for u in &units {
            let spki = u.status.transport_key.as_deref().ok_or_else(|| {
                Error::other(format!(
                    "unit {} has no key-transport key yet: make it trust the zone first (cryptounit-zone-trust)",
                    u.short()
                ))
            })?;
            let spki = B64
                .decode(spki)
                .map_err(|_| Error::other("bad key-transport key"))?;
            keys.push((u.id, spki));
        }
        let (uri, module) = self.card(card)?;
        let c = Card::open_as(&module, &uri, Role::Officer, || {
            crate::card::officer_pin(&self.pw, &uri)
        })?;
        for (unit, spki) in &keys {
            c.trust_unit(*unit, spki)?;
        }
        c.logout();
        print(
            self.out,
            format!(
                "card {uri} trusts {} unit(s): its key parts can be delivered to them",
                keys.len()
            ),
            &json!({"card": uri.to_string(), "units": keys.iter().map(|(u, _)| u.to_string()).collect::<Vec<_>>()}),
        );
        Ok(())
    }

    /// Opens the part cards of a load: each with the name of the part it delivers.
    pub(super) fn part_cards(&self, cards: &[String]) -> Result<Vec<(Card, String)>, Error> {
        let mut out: Vec<(Card, String)> = Vec::new();
        for c in cards {
            let (uri, module) = self.card(c)?;
            let card = Card::open(&module, &uri, || crate::card::pin(&self.pw, &uri))?;
            card.certified(&self.p)?;
            let part = card.part_name()?;
            out.push((card, part));
        }
        Ok(out)
    }
}

/// Checks, before anything is sent, that every unit trusts the zone of every part card.
pub(super) fn check_zones(t: &Tke, cards: &[(Card, String)], units: &[Unit]) -> Result<(), Error> {
    for (card, _) in cards {
        let (cert, _, _) = card.certified(&t.p)?;
        for u in units {
            strongroom_engine::admin::verify_card_certificate(&t.p, &u.status.zones, &cert)
                .map_err(|m| {
                    Error::other(format!(
                        "unit {} refuses card {}: {m}",
                        u.short(),
                        card.uri()
                    ))
                })?;
        }
    }
    Ok(())
}

/// The card parts of one unit's load: each card wraps its part for `u`'s load `importer`.
pub(super) fn deliver(
    t: &Tke,
    cards: &[(Card, String)],
    u: &Unit,
    importer: &[u8; 16],
) -> Result<Vec<CardPart>, Error> {
    if cards.is_empty() {
        return Ok(Vec::new());
    }
    let transport = u.status.transport_key.as_deref().ok_or_else(|| {
        Error::other(format!(
            "unit {} has no key-transport key: make it trust the cards' zone first (cryptounit-zone-trust)",
            u.short()
        ))
    })?;
    let transport = B64
        .decode(transport)
        .map_err(|_| Error::other("bad key-transport key"))?;
    cards
        .iter()
        .map(|(card, part)| card.deliver_part(&t.p, part, t.instance, u.id, importer, &transport))
        .collect()
}
