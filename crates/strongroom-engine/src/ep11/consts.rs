//! PKCS#11 and IBM EP11 codes, defined once in the model (shared with the front ends and
//! the PKCS#11 library).

pub use strongroom_model::pkcs11::*;
