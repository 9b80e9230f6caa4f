//! One registration page for every application (HL-5.2, GB-6.4a): natural persons register
//! with a phone proven by a one-time code; legal persons with their company data, the
//! registering person becoming their first agent. Account recovery by phone code.
