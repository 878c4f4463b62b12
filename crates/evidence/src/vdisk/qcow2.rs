//! qcow2 reader: see the module above.
