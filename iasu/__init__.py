"""Referral platform for integrated anti-stalking units."""
