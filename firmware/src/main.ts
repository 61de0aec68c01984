// Entry point of the beacon bundle: everything above is declarations; this is the only top-level call.
import { boot } from './beacon.js';

boot();
