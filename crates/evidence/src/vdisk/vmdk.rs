//! vmdk reader: see the module above.
