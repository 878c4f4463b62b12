//! vhd reader: see the module above.
