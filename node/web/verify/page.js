// /verify/{number}: read the configuration the node put in the page, then check in this browser.
import {start} from './verify.js';
import fallback from './fallback.js';

const config = JSON.parse(document.getElementById('kp-config').textContent);
start({...config, fallback});
