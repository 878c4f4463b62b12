//! vhdx reader: see the module above.
